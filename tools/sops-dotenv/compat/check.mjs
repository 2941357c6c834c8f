// Opens a SOPS dotenv file written by sops-dotenv with code that is not ours:
//  1. sops-age (a third-party npm implementation of SOPS + age) decrypts the values;
//  2. the MAC is recomputed from SOPS's published rules with age-encryption and
//     node:crypto (sops-age itself does not check it): SHA-512 of the values in file
//     order, upper-case hex, AES-256-GCM under the data key with lastmodified as AAD.
// Usage: node check.mjs FILE.env.enc AGE-KEY-FILE  → prints {"values": {...}, "mac_ok": bool}
import { readFileSync } from "node:fs";
import { createDecipheriv, createHash } from "node:crypto";
import { decryptSops } from "sops-age";
import { Decrypter, armor } from "age-encryption";

const [file, keyFile] = process.argv.slice(2);
const text = readFileSync(file, "utf8");
const secretKey = readFileSync(keyFile, "utf8")
  .split("\n")
  .map((line) => line.trim())
  .find((line) => line.startsWith("AGE-SECRET-KEY-1"));

const values = await decryptSops(text, { secretKey, fileType: "env" });

const meta = {};
const keysInOrder = [];
for (const line of text.split("\n")) {
  if (!line || line.startsWith("#")) continue;
  const at = line.indexOf("=");
  const key = line.slice(0, at);
  if (key.startsWith("sops_")) meta[key.slice(5)] = line.slice(at + 1).replaceAll("\\n", "\n");
  else keysInOrder.push(key);
}
const decrypter = new Decrypter();
decrypter.addIdentity(secretKey);
const dataKey = await decrypter.decrypt(armor.decode(meta.age__list_0__map_enc));

function open(sealed, aad) {
  const fields = Object.fromEntries(
    sealed.slice("ENC[AES256_GCM,".length, -1).split(",").map((part) => {
      const colon = part.indexOf(":");
      return [part.slice(0, colon), part.slice(colon + 1)];
    }),
  );
  const decipher = createDecipheriv("aes-256-gcm", dataKey, Buffer.from(fields.iv, "base64"));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(Buffer.from(fields.tag, "base64"));
  return Buffer.concat([decipher.update(Buffer.from(fields.data, "base64")), decipher.final()]).toString("utf8");
}

const storedMac = open(meta.mac, meta.lastmodified);
const hash = createHash("sha512");
for (const key of keysInOrder) hash.update(String(values[key] ?? ""), "utf8");
const macOk = hash.digest("hex").toUpperCase() === storedMac;
process.stdout.write(JSON.stringify({ values, mac_ok: macOk }) + "\n");
