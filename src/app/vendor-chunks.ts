// The binary's vendor chunks (scripts/build.ts bundles them apart, src/app/sea-main.ts runs them at
// their first require): dependencies no start-up path runs — downloads' undici and tar, the aws
// provider's EC2 client, ssh2. One list for both sides.
export const vendorChunks: readonly string[] = ['undici', 'tar', '@aws-sdk/client-ec2', 'ssh2'];

/** A vendor chunk's file name beside the wrapped bundle (`@aws-sdk/client-ec2` -> `@aws-sdk+client-ec2.cjs`). */
export const vendorFile = (id: string): string => `${id.replace(/\//g, '+')}.cjs`;
