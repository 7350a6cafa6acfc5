import type { ApiResult } from "./errors.js";
import type { EmulatorState } from "./state.js";

/** A parsed request to a WeChat API path. */
export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** The JSON object body, if the request had a well-formed one. */
  readonly body: Readonly<Record<string, unknown>> | undefined;
  /** True when a body was sent but is not a JSON object (→ 47001 where a body is read). */
  readonly bodyMalformed: boolean;
  /** Caller address without the IPv4-mapped `::ffff:` prefix. */
  readonly ip: string;
}

/** One WeChat API endpoint. */
export interface ApiRoute {
  /** The only method served; others get 43001 (GET APIs) or 43002 (POST APIs). */
  readonly method: "GET" | "POST";
  /** The account a request is about (appid parameter or token owner), for counters and faults. */
  identify(req: ApiRequest, state: EmulatorState): string | undefined;
  /**
   * WeCom only: the app within the account (`<corpid>/<agentid or name>`),
   * counted beside the account so tests can ask per app as well as per corp.
   */
  identifyApp?(req: ApiRequest, state: EmulatorState): string | undefined;
  /** "wecom": errors are shaped like WeCom's (hint, from ip) instead of R1's rid. */
  readonly family?: "wecom";
  handle(req: ApiRequest, state: EmulatorState): ApiResult;
}

/** A non-empty query parameter. */
export function queryParam(req: ApiRequest, name: string): string | undefined {
  const value = req.query.get(name);
  return value ? value : undefined;
}

/** A non-empty string field of the JSON body. */
export function bodyField(req: ApiRequest, name: string): string | undefined {
  const value = req.body?.[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** The owner of the `access_token` parameter, if it names a token ever issued. */
export function tokenOwner(req: ApiRequest, state: EmulatorState): string | undefined {
  const value = queryParam(req, "access_token");
  return value === undefined ? undefined : state.tokens.lookup(value)?.appid;
}
