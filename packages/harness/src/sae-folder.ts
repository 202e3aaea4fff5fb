/**
 * Trained SAEs on disk as SAELens folders: weights in raw activation space (normalisation folded in), cfg.json with
 * SAELens's fields plus our provenance block under `saelab`. Loading and saving are core's (one loader for every
 * registered architecture, SAELens conventions folded by each architecture's hooks); this module makes sure the
 * registry holds this build's architectures before a folder is read.
 */
import './registry.js';
import { SAELAB_VERSION } from '@saelab/core';

export { type LoadedSae, loadSae, saveSae, servedForm } from '@saelab/core';

export const CODE_VERSION = SAELAB_VERSION;
