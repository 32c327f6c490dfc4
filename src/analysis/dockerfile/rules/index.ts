import { APT_RULES } from './apt.js';
import { BASE_IMAGE_RULES } from './base-image.js';
import { CROSS_COMPILE_RULES } from './cross-compile.js';
import { DOCKERIGNORE_RULES } from './dockerignore.js';
import { INSTRUCTION_RULES } from './instructions.js';
import { LANG_PACKAGE_RULES } from './lang-packages.js';
import { LAYER_RULES } from './layers.js';
import { OS_PACKAGE_RULES } from './os-packages.js';
import type { Rule } from './rule.js';
import { SECURITY_RULES } from './security.js';
import { STAGE_RULES } from './stages.js';

/** Every rule, in the order findings on the same line are reported. */
export const RULES: readonly Rule[] = [
  ...BASE_IMAGE_RULES,
  ...APT_RULES,
  ...OS_PACKAGE_RULES,
  ...LANG_PACKAGE_RULES,
  ...LAYER_RULES,
  ...INSTRUCTION_RULES,
  ...STAGE_RULES,
  ...CROSS_COMPILE_RULES,
  ...SECURITY_RULES,
  ...DOCKERIGNORE_RULES,
];
