// SHA-256 of official release assets, by asset, version and architecture.
// Facts from the upstream releases' published checksums; see README "Versions table".
import type { Arch } from '../agent/host/facts.ts';

export type ChecksumTable = Readonly<Record<string, Readonly<Record<string, Readonly<Partial<Record<Arch, string>>>>>>>;

export const checksums: ChecksumTable = {};
