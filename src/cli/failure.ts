import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ConfigError } from "../config/config.js";
import { ConnectionFlagError } from "./connection.js";
import { GrantsCommandError } from "./grants-commands.js";
import { GrantsFileError } from "./grants-file.js";
import { PassphraseError } from "./passphrase.js";
import { REAUTHORIZE_EXIT, USAGE } from "./usage.js";

/** A command line the CLI cannot run: the message, then the usage text, exit 2. */
export class UsageError extends Error {}

/** The broker's reason for "send the user through WeChat's authorization again". */
const REAUTHORIZE = "REAUTHORIZE";

/** Writes what went wrong to stderr and returns the exit status. */
export function reportFailure(err: unknown): number {
  const say = (line: string) => process.stderr.write(`token-broker: ${line}\n`);
  if (err instanceof ConnectionFlagError || err instanceof PassphraseError) {
    say(err.message);
    return 2;
  }
  if (err instanceof UsageError || (err instanceof TypeError && "code" in err)) {
    process.stderr.write(`token-broker: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (err instanceof ConfigError) {
    say(`invalid configuration: ${err.message}`);
    return 2;
  }
  if (err instanceof GrantsCommandError || err instanceof GrantsFileError) {
    say(err.message);
    return 1;
  }
  if (err instanceof ConnectError) {
    say(`${Code[err.code]}: ${err.rawMessage}`);
    const info = err.findDetails(ErrorInfoSchema).find((i) => i.reason === REAUTHORIZE);
    if (info === undefined) return 1;
    const { subject, app_id: app, errcode } = info.metadata;
    const who = subject ? `user '${subject}'${app ? ` of app '${app}'` : ""}` : "user";
    say(
      `the ${who} must authorize again (reason REAUTHORIZE${errcode ? `, WeChat errcode ${errcode}` : ""}): ` +
        "send them through WeChat's OAuth authorization for a new code, then exchange it (token-broker oauth exchange)",
    );
    return REAUTHORIZE_EXIT;
  }
  say(err instanceof Error ? err.message : String(err));
  return 1;
}
