/**
 * A user's grant besides its access token, kept in the credential's sealed
 * `state` (encrypted at rest like the value): the refresh token, which cannot
 * be re-fetched, and what WeChat said about the authorization.
 */
export interface GrantState {
  readonly refreshToken: string;
  readonly scope: string;
  readonly unionid?: string;
  readonly snapshotUser?: boolean;
}

export function encodeGrantState(g: GrantState): string {
  return JSON.stringify({
    v: 1,
    rt: g.refreshToken,
    scope: g.scope,
    ...(g.unionid === undefined ? {} : { unionid: g.unionid }),
    ...(g.snapshotUser ? { snapshot: true } : {}),
  });
}

/** The grant in `state`, or undefined when there is none or it is not one (never throws). */
export function decodeGrantState(state: string | undefined): GrantState | undefined {
  if (state === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(state);
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (r.v !== 1 || typeof r.rt !== "string" || r.rt === "") return undefined;
  return {
    refreshToken: r.rt,
    scope: typeof r.scope === "string" ? r.scope : "",
    ...(typeof r.unionid === "string" ? { unionid: r.unionid } : {}),
    ...(r.snapshot === true ? { snapshotUser: true } : {}),
  };
}
