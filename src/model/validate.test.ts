import { describe, expect, it } from 'vitest';
import { calendarProblem, pathProblem } from './validate.ts';

describe('calendarProblem', () => {
  it.each(['*:0/15', 'hourly', 'daily', 'Mon..Fri *-*-* 02:00:00', 'Sat,Sun 03:30', '*-*-01 00:00:00', '2026-12-05 10:00 UTC', '*:*:0/30', 'Mon'])('accepts %s', (s) => {
    expect(calendarProblem(s)).toBeUndefined();
  });
  it.each(['every 15 minutes', '25:00', '*:60', '*-13-01 00:00:00', '*-*-32 00:00', 'Mon..Fry 02:00', '*:0/0', '', '12:00 12:00'])('refuses %j', (s) => {
    expect(calendarProblem(s)).toMatch(/OnCalendar/);
  });
});

describe('pathProblem', () => {
  it.each([
    ['/etc/motd', undefined],
    ['/etc/../motd', /write \/motd/],
    ['/etc//motd', /write \/etc\/motd/],
    ['/etc/motd/', /write \/etc\/motd/],
    ['/etc/./motd', /normalized/],
    ['etc/motd', /absolute/],
    ['/', /not \//],
  ] as const)('%s', (p, want) => {
    const got = pathProblem(p);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(want);
  });
});
