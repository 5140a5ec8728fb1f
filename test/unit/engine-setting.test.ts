import { ConfigError, loadConfig } from '../../src/config.js';

test('FLOWGATE_ENGINE defaults to dbos, accepts v2 and names itself when wrong', () => {
  expect(loadConfig({}).engine).toBe('dbos');
  expect(loadConfig({ FLOWGATE_ENGINE: 'v2' }).engine).toBe('v2');
  expect(() => loadConfig({ FLOWGATE_ENGINE: 'v3' })).toThrow(ConfigError);
  expect(() => loadConfig({ FLOWGATE_ENGINE: 'v3' })).toThrow(/FLOWGATE_ENGINE/);
});
