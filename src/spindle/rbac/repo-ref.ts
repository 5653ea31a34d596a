/**
 * How a repo is named for permissions and secrets. Gen1 records identify a repo by its owner's
 * DID and its name (`<ownerDid>/<name>`, upstream's "DidSlashRepo"); Gen2 records carry a repo
 * DID. A `RepoRef` holds whichever the caller knows; both keys are honoured so a repo registered
 * by name keeps its grants and secrets after it gains a DID.
 */
import { AtUri, isValidDid, isValidRecordKey } from "@atproto/syntax";
import { REPO_NSID } from "../../protocol/nsid.ts";
import { invalidRepoError } from "../errors.ts";

export interface RepoRef {
  ownerDid: string;
  name?: string | null;
  repoDid?: string | null;
}

/**
 * `<ownerDid>/<name>`. Refuses names that could escape or alias another repo's key (upstream
 * uses securejoin for the same reason): no `/`, no `..`, no control characters.
 */
export function didSlashRepo(ownerDid: string, name: string): string {
  if (!isValidDid(ownerDid)) throw new TypeError(`not a DID: ${JSON.stringify(ownerDid)}`);
  if (name === "" || name === "." || name === ".." || /[/\\\u0000-\u001f]/.test(name)) {
    throw new TypeError(`not a valid repo name: ${JSON.stringify(name)}`);
  }
  return `${ownerDid}/${name}`;
}

/** Every object key the repo is known by: its DID first, then `<ownerDid>/<name>`. */
export function repoObjectKeys(ref: RepoRef): string[] {
  const keys: string[] = [];
  if (ref.repoDid) {
    if (!isValidDid(ref.repoDid)) throw new TypeError(`not a DID: ${JSON.stringify(ref.repoDid)}`);
    keys.push(ref.repoDid);
  }
  if (ref.name) keys.push(didSlashRepo(ref.ownerDid, ref.name));
  if (keys.length === 0) throw new TypeError("a repo needs a name or a repo DID");
  return keys;
}

/** The one key new data (secrets) is stored under: the repo DID when known, else the name key. */
export function repoScopeKey(ref: RepoRef): string {
  return repoObjectKeys(ref)[0] as string;
}

/** The parts of a `sh.tangled.repo` record AT-URI (the `repo` parameter of the secrets methods). */
export interface RepoRecordUri {
  /** Authority: the repo owner's DID (handles are refused: the record must be fetched by DID). */
  did: string;
  rkey: string;
}

/**
 * Parses `at://<did>/sh.tangled.repo/<rkey>`; anything else is `InvalidRepo` (§3.2). The name
 * behind it still has to be read from the owner's PDS (§3.1), which is the XRPC layer's job.
 */
export function parseRepoAtUri(value: string): RepoRecordUri {
  let uri: AtUri;
  try {
    uri = new AtUri(value);
  } catch {
    throw invalidRepoError(value);
  }
  const did = uri.hostname;
  const rkey = uri.rkey;
  if (
    !value.startsWith("at://") ||
    !isValidDid(did) ||
    uri.collection !== REPO_NSID ||
    !isValidRecordKey(rkey) ||
    uri.pathname.split("/").length !== 3 ||
    uri.search !== "" ||
    uri.hash !== ""
  ) {
    throw invalidRepoError(value);
  }
  return { did, rkey };
}
