/** `saelab --help` lists every command; each command's --help documents every one of its flags. */
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli.js';
import { cli } from './util.js';

const COMMANDS = ['train', 'eval', 'encode', 'reconstruct', 'generate', 'harvest', 'sweep', 'sweep-point', 'probe', 'dashboard'];

describe('saelab --help', () => {
  it('lists every command with a description', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const name of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^\\s+${name} \\[options\\]\\s+\\S`, 'm'));
    expect(buildProgram().commands.map((c) => c.name()).sort()).toEqual([...COMMANDS].sort());
  });

  it.each(COMMANDS)('%s --help documents every flag', async (name) => {
    const r = await cli(name, '--help');
    expect(r.code).toBe(0);
    const cmd = buildProgram().commands.find((c) => c.name() === name)!;
    expect(cmd.options.length).toBeGreaterThan(2);
    for (const opt of cmd.options) {
      expect(opt.description.length, `${name} ${opt.long} has no description`).toBeGreaterThan(5);
      expect(r.stdout).toContain(opt.flags);
    }
  });

  it('train --help names the flags issue 2 asks for', async () => {
    const r = await cli('train', '--help');
    for (const flag of ['--arch', '--activations', '--out', '--sparsity', '--k', '--d-sae', '--expansion', '--steps', '--tokens', '--batch', '--lr', '--optimizer', '--seed', '--init', '--normalize', '--lr-warmup', '--sparsity-warmup', '--lr-schedule', '--grad-clip']) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+${flag}[ ,<]`, 'm'));
    }
    expect(r.stdout).toMatch(/relu.*gated.*topk.*jumprelu/s);
  });
});
