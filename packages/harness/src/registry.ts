/**
 * The architectures of this build. Importing an `@saelab/sae-*` package registers its architectures in core's open
 * registry, so these imports are the one place that lists them: the CLI's choices, the sweep config's names, the
 * SAELens loader and the sweep's code versions all come from what is registered. Adding an architecture: write its
 * package (see docs/design.md), add its import here and its dependency to harness/package.json.
 */
import '@saelab/sae-relu';
import '@saelab/sae-gated';
import '@saelab/sae-topk';
import '@saelab/sae-jumprelu';
import '@saelab/sae-matryoshka';
import { type SaeArchitecture, architectureForSaelens, architectureNames, getArchitecture, registeredArchitectures } from '@saelab/core';

/** The architectures by CLI name, in registration order. */
export const ARCHITECTURES: Readonly<Record<string, SaeArchitecture<any, any>>> = Object.fromEntries(registeredArchitectures().map((a) => [a.name, a]));
export const ARCH_NAMES: string[] = architectureNames();

export { architectureForSaelens, getArchitecture };

/** "a, b or c": a list of names for messages. */
export const nameList = (names: string[]): string => (names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`);
