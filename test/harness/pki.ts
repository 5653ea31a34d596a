// Throw-away PKI for one test control plane: a CA, the apiserver's serving certificate, client
// certificates (CN = user, O = groups, as the apiserver's x509 authenticator reads them) and the
// service-account signing key. Node has no X.509 writer, so certificates come from `openssl`.
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly adminCert: string;
  readonly adminKey: string;
  readonly saPublicKey: string;
  readonly saPrivateKey: string;
}

export interface IssuedCert {
  readonly certPath: string;
  readonly keyPath: string;
}

const DAYS = "7";

async function openssl(cwd: string, args: string[]): Promise<void> {
  try {
    await run("openssl", args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

async function signed(
  dir: string,
  name: string,
  subject: string,
  extensions: string,
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await openssl(dir, [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    key,
    "-out",
    csr,
    "-subj",
    subject,
  ]);
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    join(dir, "ca.crt"),
    "-CAkey",
    join(dir, "ca.key"),
    "-CAcreateserial",
    "-out",
    cert,
    "-days",
    DAYS,
    "-extfile",
    ext,
  ]);
  return { cert, key };
}

export async function createPki(dir: string): Promise<Pki> {
  await mkdir(dir, { recursive: true });
  await openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    DAYS,
    "-subj",
    "/CN=loom-test-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
  ]);
  const server = await issueServingCert(dir, "apiserver");
  const admin = await issueClientCert(dir, "admin", "test-admin", ["system:masters"]);
  // The service-account token signer; ES256 is accepted by the apiserver and quick to generate.
  const sa = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const saPrivateKey = join(dir, "sa.key");
  const saPublicKey = join(dir, "sa.pub");
  await writeFile(saPrivateKey, sa.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  await writeFile(saPublicKey, sa.publicKey.export({ type: "spki", format: "pem" }));
  return {
    dir,
    caCert: join(dir, "ca.crt"),
    caKey: join(dir, "ca.key"),
    serverCert: server.certPath,
    serverKey: server.keyPath,
    adminCert: admin.certPath,
    adminKey: admin.keyPath,
    saPublicKey,
    saPrivateKey,
  };
}

/** A serving certificate for 127.0.0.1 / localhost, signed by the CA in `pkiDir`. */
export async function issueServingCert(pkiDir: string, fileStem: string): Promise<IssuedCert> {
  const { cert, key } = await signed(
    pkiDir,
    fileStem,
    `/CN=${fileStem}`,
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
  );
  return { certPath: cert, keyPath: key };
}

/** A client certificate for `user` in `groups`, signed by the CA in `pkiDir`. */
export async function issueClientCert(
  pkiDir: string,
  fileStem: string,
  user: string,
  groups: readonly string[],
): Promise<IssuedCert> {
  if (!/^[A-Za-z0-9._:@-]+$/.test(user) || groups.some((g) => !/^[A-Za-z0-9._:@-]+$/.test(g))) {
    // openssl's -subj syntax treats "/" and "=" specially; keep names simple rather than escape.
    throw new Error(
      `unsupported characters in user ${JSON.stringify(user)} or groups ${JSON.stringify(groups)}`,
    );
  }
  const subject = `${groups.map((g) => `/O=${g}`).join("")}/CN=${user}`;
  const { cert, key } = await signed(
    pkiDir,
    fileStem,
    subject,
    "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
  );
  return { certPath: cert, keyPath: key };
}
