import { GroupCommit } from '../../src/util/group-commit.js';

/** A writer that records its batches and answers when the test lets it. */
function writer(fail: (items: number[]) => boolean = () => false) {
  const batches: number[][] = [];
  const pending: (() => void)[] = [];
  const write = (items: number[]) => {
    batches.push(items);
    return new Promise<number[]>((resolve, reject) => {
      pending.push(() => (fail(items) ? reject(new Error(`batch ${items.join(',')} refused`)) : resolve(items.map((i) => i * 10))));
    });
  };
  const releaseAll = async () => {
    while (pending.length) {
      pending.shift()!();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { batches, write, releaseAll };
}

test('an item submitted while a slot is free is written at once, alone', async () => {
  const w = writer();
  const group = new GroupCommit(w.write, { maxBatch: 8, maxInFlight: 2 });
  const answer = group.submit(1);
  expect(w.batches).toEqual([[1]]);
  await w.releaseAll();
  expect(await answer).toBe(10);
});

test('items submitted while every slot is busy go together, at most maxBatch at a time, each getting its own answer', async () => {
  const w = writer();
  const group = new GroupCommit(w.write, { maxBatch: 3, maxInFlight: 1 });
  const answers = [1, 2, 3, 4, 5, 6].map((i) => group.submit(i));
  expect(w.batches).toEqual([[1]]);
  await w.releaseAll();
  expect(await Promise.all(answers)).toEqual([10, 20, 30, 40, 50, 60]);
  expect(w.batches).toEqual([[1], [2, 3, 4], [5, 6]]);
});

test('a batch that fails is written again item by item: only the bad item fails its caller', async () => {
  const w = writer((items) => items.includes(3));
  const group = new GroupCommit(w.write, { maxBatch: 8, maxInFlight: 1 });
  const answers = [1, 2, 3, 4].map((i) => group.submit(i).then((v) => ({ ok: v }), (e: Error) => ({ error: e.message })));
  await w.releaseAll();
  expect(await Promise.all(answers)).toEqual([{ ok: 10 }, { ok: 20 }, { error: 'batch 3 refused' }, { ok: 40 }]);
  expect(w.batches).toEqual([[1], [2, 3, 4], [2], [3], [4]]);
});
