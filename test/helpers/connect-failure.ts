import { ConnectError } from "@connectrpc/connect";

/** The status and message of a failed call; throws if the call succeeds. */
export async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}
