// Layer: engine (README "How it works"). Imports no project layer above it.
// The one version comparison: "is this release at least major.minor", for the feature and
// compatibility decisions components make from a version string ("v1.35.1", "2.1.6", "3.5.21").

/** [major, minor] of "v1.35.1", "2.1.6" or "3.5"; [0, 0] for anything that is not a version. Pure. */
export function majorMinor(version: string): [number, number] {
  const m = /^v?(\d+)\.(\d+)/.exec(version.trim());
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** Whether version is major.minor or later (patch ignored). Pure. */
export function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a, b] = majorMinor(version);
  return a > major || (a === major && b >= minor);
}
