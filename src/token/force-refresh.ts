import type { StoredCredential } from "../core/credential.js";
import { FailedPreconditionError, UpstreamUnavailableError } from "../shared/errors.js";
import { raceAbort } from "../shared/race-abort.js";
import type { CredentialIntake } from "./credential-intake.js";
import type { Refresher } from "./refresher.js";
import type { RulesBook } from "./rules-book.js";

/**
 * An operator's leak response (stable tokens): WeChat issues a new value at
 * once and the old one keeps working for at most 5 minutes. Kinds say
 * whether they can be forced at all (CredentialKindSpec.forceRefusal).
 */
export class ForceRefresh {
  constructor(
    private readonly rules: RulesBook,
    private readonly refresher: Refresher,
    private readonly intake: CredentialIntake,
  ) {}

  /** Why the app's `kind` cannot be force-refreshed, or undefined when it can. */
  refusal(appId: string, kind: string): string | undefined {
    const resolved = this.rules.resolve({ appId, kind });
    const { spec } = resolved.rules;
    return spec.forceRefusal
      ? spec.forceRefusal(resolved.app)
      : `${kind} cannot be force-refreshed`;
  }

  /** The caller (the admin service) has already checked WeChat's 20-a-day and 30-second limits. */
  async run(appId: string, kind: string, signal: AbortSignal): Promise<StoredCredential> {
    const refusal = this.refusal(appId, kind);
    if (refusal !== undefined) throw new FailedPreconditionError(refusal);
    const key = { appId, kind };
    const { rules } = this.rules.resolve(key);
    const result = await raceAbort(
      this.refresher.run({ rules, key, reason: "force", force: true }).promise,
      signal,
    );
    if (!result.credential)
      throw new UpstreamUnavailableError(`the force refresh of app '${appId}' stored nothing`);
    this.intake.remember(key, result.credential);
    return result.credential;
  }
}
