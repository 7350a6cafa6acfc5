import { KindRegistry } from "../core/kind-registry.js";
import { accessToken } from "./wechat/access-token.js";
import { miniProgram, officialAccount } from "./wechat/accounts.js";
import { jsapiTicket, wxCardTicket } from "./wechat/tickets.js";
import { userAccessToken } from "./wechat/user-access-token.js";
import { wecomApp } from "./wecom/accounts.js";
import { wecomAccessToken, wecomAgentTicket, wecomJsapiTicket } from "./wecom/kinds.js";

/**
 * The one list of account types and credential kinds. A new kind is a
 * plug-in file and a line here; config, ACLs, the CLI, the RPC layer, quota
 * endpoints and metric labels all derive from this registry.
 */
export const KINDS = new KindRegistry(
  [officialAccount, miniProgram, wecomApp],
  [
    accessToken,
    jsapiTicket,
    wxCardTicket,
    userAccessToken,
    wecomAccessToken,
    wecomJsapiTicket,
    wecomAgentTicket,
  ],
);

/** Every kind name, in registration order. */
export const CREDENTIAL_KINDS: readonly string[] = KINDS.names();
