// The one registration list, in display order. A new component adds one line here.
import type { Component } from './component.ts';
import { nodeFilesComponent } from './node-files.ts';

export const components: readonly Component[] = [nodeFilesComponent];
