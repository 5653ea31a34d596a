/**
 * At most `n` tasks at once, the rest started in the order they came (FIFO). The engine places
 * runs through one: 200 SpindleSet creates sent at once all finish late together (the API
 * server works on all of them, over 200 new connections), while 16 at a time finish one after
 * another, so the first runs reach the controller at once and the rest follow in order.
 */
export class Limiter {
  readonly #max: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      // The slot passes straight to the next task, so none can jump the queue in between.
      if (next) next();
      else this.#running--;
    }
  }
}
