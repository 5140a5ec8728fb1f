import { ConfigError, loadConfig } from '../../src/config.js';

test('FLOWGATE_ENGINE defaults to v2, accepts dbos (the previous engine) and names itself when wrong', () => {
  expect(loadConfig({}).engine).toBe('v2');
  expect(loadConfig({ FLOWGATE_ENGINE: 'dbos' }).engine).toBe('dbos');
  expect(() => loadConfig({ FLOWGATE_ENGINE: 'v3' })).toThrow(ConfigError);
  expect(() => loadConfig({ FLOWGATE_ENGINE: 'v3' })).toThrow(/FLOWGATE_ENGINE/);
});
