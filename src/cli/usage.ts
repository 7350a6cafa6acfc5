import { API_KEY_ENV } from "./connection.js";
import { PASSPHRASE_ENV } from "./passphrase.js";

/** Exit status of a call WeChat or the broker refused because the user must authorize again. */
export const REAUTHORIZE_EXIT = 3;

export const USAGE = `token-broker: the central WeChat token server

Usage:
  token-broker serve --config FILE [--watch-config SECONDS]
                                            run the broker (or set TOKEN_BROKER_CONFIG); with
                                            --watch-config, reload when the file or a file it
                                            names changes (mounted ConfigMaps and Secrets)
  token-broker demo [--grpc HOST:PORT] [--connect HOST:PORT] [--token-lifetime SECONDS]
                                            in-memory store + built-in WeChat emulator, apps "demo"
                                            (official account) and "demo-wecom" (WeCom app)
  token-broker emulator [--host H] [--port N] [--app APPID:SECRET ...] [--token-lifetime SECONDS]
                        [--wecom-app CORPID:AGENTID:SECRET ...]   (empty AGENTID: a corp-level secret)
                                            the WeChat credential API emulator alone (WeCom too)
  token-broker get        --app ID [--kind KIND] [--subject OPENID] [--addr HOST:PORT] [--reveal]
  token-broker watch      --app ID [--kind KIND] [--subject OPENID] [--addr HOST:PORT] [--reveal]
  token-broker invalidate --app ID --value VALUE [--errcode N] [--kind KIND] [--subject OPENID]
  token-broker oauth exchange --app ID --code CODE [--reveal]   a user's code for the user's grant
  token-broker oauth forget   --app ID --openid OPENID          delete a user's grant (logout)
  token-broker status [--app ID] [--addr HOST:PORT]   apps and types, credentials, quota, circuits, alerts
  token-broker health [--service NAME] [--addr HOST:PORT]  grpc.health.v1 Check: exit 0 only if SERVING
  token-broker force-refresh --app ID --reason TEXT          a stable token leaked: new one now (audited)
  token-broker clear-quota   --app ID --reason TEXT          WeChat clear_quota/v2 after 45009 (audited)
  token-broker grants export --config FILE --out FILE [--passphrase-file FILE]
  token-broker grants import --config FILE --in FILE  [--passphrase-file FILE]
                                            users' grants to or from an encrypted file (backups, moves)
  token-broker hash-key < key-file                            SHA-256 of an API key, for security.clients

KIND is access_token (default), jsapi_ticket, wx_card_ticket, wecom_agent_ticket (a WeCom app's
ticket for wx.agentConfig) or user_access_token (a user's web OAuth token: --subject is the user's
openid). --addr defaults to 127.0.0.1:50051. get, watch and oauth exchange print the credential's
fingerprint; --reveal adds its value. watch runs until interrupted, following the broker through
reconnects and restarts (the client library, packages/token-source); what it rides out goes to
stderr. A call refused because the user must authorize again
(ErrorInfo reason REAUTHORIZE) says so and exits ${REAUTHORIZE_EXIT}.

Connecting (get, watch, invalidate, oauth, status, health, force-refresh, clear-quota):
  --api-key-file FILE   send the API key in FILE as authorization: Bearer (or set ${API_KEY_ENV});
                        there is no --api-key flag: shell history and ps would keep the key
  --tls                 connect over TLS (implied by --ca and --cert)
  --ca FILE             PEM CA bundle to verify the broker's certificate (default: system CAs)
  --cert FILE --key FILE  client certificate and key (mutual TLS)

grants export/import read the store the broker's config names (redis or sqlite; stop the broker
first for sqlite) with its encryption keys. The file is sealed with a key derived from a
passphrase read from --passphrase-file FILE or ${PASSPHRASE_ENV}, never from the command line.
`;
