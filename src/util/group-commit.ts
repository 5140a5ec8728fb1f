/**
 * Writes items in batches without delaying any: an item submitted while fewer than `maxInFlight`
 * batches are being written goes at once; items submitted meanwhile wait for the next free slot
 * and go together. Under load this turns N statements and N commits into a few, which is where
 * a database on a small machine spends its time (parse, plan and WAL flush per commit); at low
 * load every item is a batch of one, written as soon as it comes.
 *
 * `write` answers one result per item, in order. When a batch fails, each of its items is written
 * on its own, so one bad item fails only its own caller.
 */
export class GroupCommit<T, R> {
  private readonly queue: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;

  constructor(private readonly write: (items: T[]) => Promise<R[]>, private readonly o: { maxBatch: number; maxInFlight: number }) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.o.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.o.maxBatch);
      this.inFlight++;
      void this.flush(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async flush(batch: typeof this.queue): Promise<void> {
    try {
      const results = await this.write(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(results[i]));
    } catch (err) {
      if (batch.length === 1) return batch[0].reject(err);
      await Promise.all(batch.map(async (b) => {
        try {
          b.resolve((await this.write([b.item]))[0]);
        } catch (one) {
          b.reject(one);
        }
      }));
    }
  }
}
