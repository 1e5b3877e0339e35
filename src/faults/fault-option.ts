import { type OptionKind, OptionValueError } from '../cli/option-kinds.js';
import { parseFaultRule } from './fault-rule.js';

function validated(rules: unknown[]): unknown[] {
  for (const r of rules) {
    try {
      parseFaultRule(r, 0);
    } catch (err) {
      throw new OptionValueError(err instanceof Error ? err.message : String(err));
    }
  }
  return rules;
}

/** `--fault '<json rule>'` (repeatable), or the config file's "fault": [rules]. */
export const faultRulesKind: OptionKind<unknown[]> = {
  arg: '<json>',
  parseText: (text) => {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      throw new OptionValueError(`not JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    return validated(Array.isArray(v) ? v : [v]);
  },
  parseJson: (v) => validated(Array.isArray(v) ? v : [v]),
  schema: { type: 'array', items: { type: 'object' } },
  range: '',
};
