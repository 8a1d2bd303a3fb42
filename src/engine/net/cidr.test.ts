import { describe, expect, it } from 'vitest';
import { cidrProblem, cidrsOverlap, formatIp, ipInCidr, ipProblem, nthAddress, parseCidr, parseIp } from './cidr.ts';

describe('addresses', () => {
  it.each([
    ['10.0.0.1', undefined],
    ['::1', undefined],
    ['::ffff:10.1.2.3', undefined],
    ['10.300.0.1', /octet 300 is above 255/],
    ['010.0.0.1', /leading zero/],
    ['10.0.0', /IPv4 or IPv6/],
    ['fd00::1::2', /IPv6/],
    ['fe80::1%eth0', /zone/],
    ['example.com', /IPv4 or IPv6/],
    [' 10.0.0.1', /IPv4 or IPv6/],
  ])('%s: %s', (text, want) => {
    const p = ipProblem(text);
    if (want === undefined) expect(p).toBeUndefined();
    else expect(p).toMatch(want);
  });

  it.each([
    ['10.96.0.10', '10.96.0.10'],
    ['fd00:0:0:0:0:0:0:a', 'fd00::a'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:0:3:4:5:6:7:8', '1:0:3:4:5:6:7:8'],
  ])('%s prints as %s', (text, want) => {
    const ip = parseIp(text);
    expect(ip).toBeDefined();
    expect(formatIp(ip as NonNullable<typeof ip>)).toBe(want);
  });
});

describe('CIDRs', () => {
  it.each([
    ['10.96.0.0/12', {}, undefined],
    ['10.300.0.0/16', {}, /octet 300 is above 255/],
    ['10.0.0.0/33', {}, /prefix length from 0 to 32/],
    ['fd00::/129', {}, /prefix length from 0 to 128/],
    ['10.0.0.0/-1', {}, /prefix length/],
    ['10.0.0.0', {}, /address\/prefix length/],
    ['10.96.0.1/12', {}, undefined],
    ['10.96.0.1/12', { network: true }, /host bits are set after the \/12: the network is 10\.96\.0\.0\/12/],
    ['fd00::1/64', { network: true }, /the network is fd00::\/64/],
    ['fd00::/64', { family: 4 }, /expected an IPv4 CIDR/],
    ['0.0.0.0/0', { network: true }, undefined],
  ] as const)('%s %j: %s', (text, opts, want) => {
    const p = cidrProblem(text, opts);
    if (want === undefined) expect(p).toBeUndefined();
    else expect(p).toMatch(want);
  });

  it.each([
    ['192.168.77.11', '192.168.77.0/24', true],
    ['192.168.78.11', '192.168.77.0/24', false],
    ['10.1.2.3', '0.0.0.0/0', true],
    ['10.1.2.3', '10.1.2.3/32', true],
    ['10.1.2.4', '10.1.2.3/32', false],
    ['300.1.2.3', '10.0.0.0/8', false],
    ['10.1.2.3', 'fd00::/8', false],
    ['fd00::5', 'fd00::/8', true],
  ] as const)('%s in %s: %s', (ip, cidr, want) => expect(ipInCidr(ip, cidr)).toBe(want));

  it.each([
    ['10.244.0.0/16', '10.96.0.0/12', false],
    ['10.96.0.0/12', '10.100.0.0/16', true],
    ['10.100.0.0/16', '10.96.0.0/12', true],
    ['10.0.0.0/8', '10.244.0.0/16', true],
    ['10.0.0.0/8', 'fd00::/8', false],
    ['192.168.0.0/24', '192.168.1.0/24', false],
  ] as const)('%s overlaps %s: %s', (a, b, want) => expect(cidrsOverlap(a, b)).toBe(want));

  it.each([
    ['10.96.0.0/12', 1, '10.96.0.1'],
    ['10.96.0.0/12', 10, '10.96.0.10'],
    ['10.0.255.240/28', 10, '10.0.255.250'],
    ['10.0.0.0/29', 10, undefined],
    ['10.0.0.0/30', 3, '10.0.0.3'],
    ['10.0.0.0/30', 4, undefined],
    ['fd00::/108', 10, 'fd00::a'],
    ['10.300.0.0/16', 1, undefined],
  ] as const)('address %i... of %s', (cidr, n, want) => expect(nthAddress(cidr, n)).toBe(want));

  it('keeps the prefix and family of a parsed CIDR', () => {
    expect(parseCidr('fd00::/64')).toMatchObject({ family: 6, bits: 64 });
    expect(parseCidr('10.0.0.0/8')).toEqual({ family: 4, base: 10n << 24n, bits: 8 });
  });
});
