import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Token } from "../../gen/tokenbroker/v1/token_service_pb.js";
import type { AppConfig, AppRegistry } from "../token/app.js";
import type { BrokerCalls, CallCtx } from "./broker-calls.js";
import type { FacadeRequest } from "./http-io.js";
import type { FacadeIdentities, Presented } from "./identities.js";
import type { Verdict } from "./invoke.js";
import { familyOf, type TokenOwners } from "./token-owners.js";
import { type Family, failureReply, type Reply } from "./wechat-reply.js";

/** What every endpoint works with. */
export interface FacadeTools {
  readonly calls: BrokerCalls;
  readonly ids: FacadeIdentities;
  readonly owners: TokenOwners;
  readonly apps: AppRegistry;
}

/** One WeChat endpoint: a request in, WeChat's answer out. */
export type Endpoint = (req: FacadeRequest, t: FacadeTools) => Promise<Reply>;

/**
 * Runs `work` through the broker's chain as the caller `verdict` names, and
 * answers with its result or with the failure in WeChat's vocabulary. A
 * refused verdict still goes through the chain, so the address check, the
 * refusal log and the metrics see it first and nothing is told to an
 * address the broker does not serve.
 */
export async function through<T>(
  req: FacadeRequest,
  verdict: Verdict,
  family: Family,
  work: (c: CallCtx) => Promise<T>,
  answer: (result: T) => Reply,
): Promise<Reply> {
  const c: CallCtx = {
    verdict,
    scope: { peer: req.peer, header: req.header, signal: req.signal, url: req.url },
    outcome: { identified: false },
  };
  let result: T;
  try {
    result = await work(c);
  } catch (err) {
    return failureReply(err, {
      family,
      refused: "refused" in verdict ? verdict.refused.errcode : undefined,
      identified: c.outcome.identified,
    });
  }
  return answer(result);
}

/** What the request carries to say who sends it; `secret` from the endpoint's own parameter. */
export function presented(req: FacadeRequest, secret: string | undefined): Presented {
  return {
    authorization: req.header.get("authorization"),
    secret,
    tlsIdentity: req.peer?.tlsIdentity,
  };
}

/** The official account or mini program whose WeChat appid this is (one broker app per appid). */
export function wechatApp(apps: AppRegistry, appid: string): AppConfig | undefined {
  return apps.all().find((a) => familyOf(a) === "wechat" && a.appid === appid);
}

/** The WeCom apps of a corp (one per agent secret). */
export function wecomApps(apps: AppRegistry, corpid: string): AppConfig[] {
  return apps.all().filter((a) => familyOf(a) === "wecom" && a.appid === corpid);
}

/** Seconds left, as WeChat's `expires_in`: what the broker really has left, not a nominal 7200. */
export function expiresIn(token: Token): number {
  return Number(token.expiresIn);
}

/** When the token stops working, as the broker told the caller. */
export function endOf(token: Token): number {
  return token.expiresAt ? timestampMs(token.expiresAt) : 0;
}
