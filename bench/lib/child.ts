/**
 * Child processes for the benchmark: each runs in its own session (so one
 * signal to its process group ends it and anything it started), with the
 * open-file limit raised as far as allowed, optionally under `timeout` so it
 * ends by itself, and with its output read line by line (so a chatty server
 * never blocks on a full pipe). Every child is tracked so
 * {@linkcode killAllChildren} can end them all, by their group ids.
 *
 * @module
 */

import { childrenOf } from "./proc.ts";

/** Output lines kept per stream, for error messages. */
const KEPT_LINES = 40;
/** Wait for a killed child's exit status at most this long. */
const KILL_WAIT_MS = 3000;

/**
 * Raises the soft open-file limit to 65536, or else to the hard limit, reports
 * it on stderr, and runs the command in a new session in place (same pid).
 */
const WRAPPER = `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
echo "NOFILE $(ulimit -n)" >&2
exec setsid "$@"`;

/** How to start a {@linkcode Child}. */
export interface ChildOptions {
  /** A name for messages. */
  label: string;
  /** The program and its arguments. */
  command: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Run under `timeout`: killed after this many seconds whatever happens. */
  maxSeconds?: number;
  /** Keep stdin open for {@linkcode Child.writeLine}; otherwise it is closed. */
  stdin?: boolean;
}

type LineListener = (line: string) => void;

const running = new Set<Child>();

/** A running child process and its output. */
export class Child {
  /** A name for messages. */
  readonly label: string;
  /** Process id of the wrapper, which is also the id of the child's process group. */
  readonly pid: number;
  /** Resolves with the exit status once the output is drained too. */
  readonly status: Promise<Deno.CommandStatus>;
  /** The last stdout lines. */
  readonly stdout: string[] = [];
  /** The last stderr lines. */
  readonly stderr: string[] = [];
  /** The open-file limit the wrapper set, or 0 if it did not say. */
  nofile = 0;
  #process: Deno.ChildProcess;
  #listeners = new Set<LineListener>();
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  #exited = false;

  /** Starts the child. */
  constructor(options: ChildOptions) {
    this.label = options.label;
    const program = options.maxSeconds === undefined
      ? options.command
      : ["timeout", "-k", "2", String(Math.ceil(options.maxSeconds)), ...options.command];
    this.#process = new Deno.Command("bash", {
      args: ["-c", WRAPPER, "bench-child", ...program],
      env: options.env,
      cwd: options.cwd,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#process.pid;
    if (options.stdin) this.#writer = this.#process.stdin.getWriter();
    running.add(this);
    const drained = Promise.all([
      this.#collect(this.#process.stdout, this.stdout),
      this.#collect(this.#process.stderr, this.stderr),
    ]);
    this.status = this.#process.status.then(async (status) => {
      this.#exited = true;
      running.delete(this);
      await drained;
      return status;
    });
  }

  async #collect(stream: ReadableStream<Uint8Array>, kept: string[]): Promise<void> {
    let rest = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop()!;
        for (const line of lines) this.#line(line, kept);
      }
      if (rest) this.#line(rest, kept);
    } catch {
      // The stream broke because the process was killed: nothing more to read.
    }
  }

  #line(line: string, kept: string[]): void {
    const nofile = line.match(/^NOFILE (\d+)$/);
    if (nofile) this.nofile = Number(nofile[1]);
    kept.push(line);
    if (kept.length > KEPT_LINES) kept.shift();
    for (const listener of this.#listeners) listener(line);
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /**
   * Resolves with the first line (stdout or stderr, from now on) that
   * `match` accepts; rejects when the child exits first or `timeoutMs` passes.
   */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(listener);
      };
      const listener = (line: string) => {
        if (!match(line)) return;
        done();
        resolve(line);
      };
      this.#listeners.add(listener);
      timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: no expected output after ${timeoutMs} ms${this.tail()}`));
      }, timeoutMs);
      this.status.then((status) => {
        if (!this.#listeners.has(listener)) return;
        done();
        reject(new Error(`${this.label} exited with ${status.code}${this.tail()}`));
      });
    });
  }

  /** The last lines of output, for error messages. */
  tail(): string {
    const lines = [...this.stdout.slice(-10), ...this.stderr.slice(-10)];
    return lines.length === 0 ? "" : `\n  ${lines.join("\n  ")}`;
  }

  /** Writes one line to stdin (when it was kept open). */
  async writeLine(line: string): Promise<void> {
    if (this.#writer === null || this.#exited) return;
    try {
      await this.#writer.write(new TextEncoder().encode(line + "\n"));
    } catch {
      // The child is gone; its status tells why.
    }
  }

  /** Closes stdin: the load processes stop when their input ends. */
  async closeStdin(): Promise<void> {
    const writer = this.#writer;
    this.#writer = null;
    if (writer === null) return;
    try {
      await writer.close();
    } catch {
      // Already closed by the child's exit.
    }
  }

  /**
   * The process that does the work: the wrapper itself, or the command that
   * `timeout` started. Waits up to `timeoutMs` for it to appear.
   */
  async workerPid(timeoutMs = 5000): Promise<number> {
    const until = performance.now() + timeoutMs;
    while (performance.now() < until && !this.#exited) {
      const children = childrenOf(this.pid);
      const comm = readComm(this.pid);
      if (comm !== "timeout") return this.pid;
      if (children.length > 0) return children[0];
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.pid;
  }

  /** Sends `signal` to the child's whole process group. */
  signal(signal: Deno.Signal): void {
    if (this.#exited) return;
    try {
      Deno.kill(-this.pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** Kills the process group with SIGKILL and waits (bounded) for the exit. */
  async kill(): Promise<void> {
    await this.closeStdin();
    this.signal("SIGKILL");
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.status,
      new Promise((resolve) => timer = setTimeout(resolve, KILL_WAIT_MS)),
    ]);
    clearTimeout(timer);
  }
}

function readComm(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return "";
  }
}

/** Kills every child still running. */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => child.kill()));
}

/** Children still running. */
export function runningChildren(): number {
  return running.size;
}
