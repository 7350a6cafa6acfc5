import type { FaultAction, FaultInfo, FaultSpec } from "./control-types.js";
import { EmulatorControlError } from "./control-types.js";

interface Fault {
  readonly id: string;
  readonly spec: FaultSpec;
  fired: number;
}

/**
 * Injected faults (R43). Each request to a WeChat API path is matched
 * against the faults in the order they were injected. Latency faults add up
 * and let matching continue; the first errcode, http or hang fault decides
 * the answer. A fault that fires counts one of its `times`; a retired fault
 * is dropped. Injected answers skip the real handler, so they consume no
 * quota and change no token state.
 */
export class FaultInjector {
  readonly #faults: Fault[] = [];
  readonly #random: () => number;
  #nextId = 1;

  constructor(random: () => number) {
    this.#random = random;
  }

  inject(spec: FaultSpec): string {
    validate(spec);
    const id = `f${this.#nextId++}`;
    this.#faults.push({ id, spec: structuredClone(spec), fired: 0 });
    return id;
  }

  remove(id: string): boolean {
    const i = this.#faults.findIndex((f) => f.id === id);
    if (i < 0) return false;
    this.#faults.splice(i, 1);
    return true;
  }

  clear(): void {
    this.#faults.length = 0;
  }

  list(): FaultInfo[] {
    return this.#faults.map((f) => ({ ...structuredClone(f.spec), id: f.id, fired: f.fired }));
  }

  /** Actions that fire for this request: zero or more latencies, then at most one terminal one. */
  match(endpoint: string, appid: string | undefined): FaultAction[] {
    const fired: FaultAction[] = [];
    for (const fault of [...this.#faults]) {
      const { spec } = fault;
      if (spec.endpoint !== "*" && spec.endpoint !== endpoint) continue;
      if (spec.appid !== undefined && spec.appid !== appid) continue;
      if (spec.probability !== undefined && this.#random() >= spec.probability) continue;
      fault.fired += 1;
      if (spec.times !== undefined && fault.fired >= spec.times) this.remove(fault.id);
      fired.push(spec.action);
      if (spec.action.type !== "latency") break;
    }
    return fired;
  }
}

function validate(spec: FaultSpec): void {
  const bad = (message: string) => new EmulatorControlError(400, `invalid fault: ${message}`);
  if (typeof spec !== "object" || spec === null) throw bad("expected an object");
  if (typeof spec.endpoint !== "string" || spec.endpoint === "") throw bad("endpoint is required");
  if (spec.endpoint !== "*" && !spec.endpoint.startsWith("/")) throw bad("endpoint must be a path");
  if (spec.appid !== undefined && typeof spec.appid !== "string")
    throw bad("appid must be a string");
  if (spec.times !== undefined && !(Number.isInteger(spec.times) && spec.times > 0)) {
    throw bad("times must be a positive integer");
  }
  const p = spec.probability;
  if (p !== undefined && !(typeof p === "number" && p > 0 && p <= 1)) {
    throw bad("probability must be in (0, 1]");
  }
  const action = spec.action as FaultAction | undefined;
  switch (action?.type) {
    case "errcode":
      if (!Number.isInteger(action.errcode)) throw bad("errcode must be an integer");
      if (action.errmsg !== undefined && typeof action.errmsg !== "string") {
        throw bad("errmsg must be a string");
      }
      return;
    case "http":
      if (!(Number.isInteger(action.status) && action.status >= 100 && action.status <= 599)) {
        throw bad("status must be an HTTP status code");
      }
      return;
    case "latency":
      if (!(typeof action.ms === "number" && action.ms >= 0 && Number.isFinite(action.ms))) {
        throw bad("ms must be a finite number ≥ 0");
      }
      return;
    case "hang":
      return;
    default:
      throw bad("action.type must be errcode, http, latency or hang");
  }
}
