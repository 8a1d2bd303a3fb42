// Build identity, replaced by esbuild `define` in the bundle; source runs report "dev".
declare const __NODEUP_VERSION__: string | undefined;
declare const __NODEUP_COMMIT__: string | undefined;

export const nodeupVersion: string = typeof __NODEUP_VERSION__ === 'string' ? __NODEUP_VERSION__ : '0.0.0-dev';
export const nodeupCommit: string = typeof __NODEUP_COMMIT__ === 'string' ? __NODEUP_COMMIT__ : 'dev';
