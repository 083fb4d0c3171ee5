// Sign-In with Ethereum (EIP-4361) through the browser's injected wallet (EIP-1193).
import { keccak_256 } from "@noble/hashes/sha3.js";
import { api } from "../api/client";

/** The part of an EIP-1193 provider we use. */
interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

const STATEMENT = "Sign in to tickscan.";

/** The wallet the browser injected (MetaMask and the like), or null when there is none. */
export function injectedWallet(): Eip1193Provider | null {
  const provider = (window as { ethereum?: Eip1193Provider }).ethereum;
  return provider && typeof provider.request === "function" ? provider : null;
}

/**
 * An address in its EIP-55 mixed-case form. Wallets often answer in lower case, and the
 * server (siwe) refuses a message whose address is not checksummed.
 */
export function checksumAddress(address: string): string {
  const hex = address.toLowerCase().replace(/^0x/, "");
  if (!/^[0-9a-f]{40}$/.test(hex)) throw new Error(`not an Ethereum address: ${address}`);
  const hash = keccak_256(new TextEncoder().encode(hex));
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    // Nibble i of the hash decides the case of character i: upper when it is 8 or more.
    const nibble = (hash[i >> 1] >> (i % 2 === 0 ? 4 : 0)) & 0x0f;
    out += nibble >= 8 ? hex[i].toUpperCase() : hex[i];
  }
  return out;
}

export interface SiweFields {
  domain: string;
  address: string;
  uri: string;
  chainId: number;
  nonce: string;
  issuedAt: string;
}

/** The EIP-4361 message, byte for byte as the specification lays it out. */
export function siweMessage(f: SiweFields): string {
  return [
    `${f.domain} wants you to sign in with your Ethereum account:`,
    f.address,
    "",
    STATEMENT,
    "",
    `URI: ${f.uri}`,
    "Version: 1",
    `Chain ID: ${f.chainId}`,
    `Nonce: ${f.nonce}`,
    `Issued At: ${f.issuedAt}`,
  ].join("\n");
}

/** personal_sign wants the message as hex of its UTF-8 bytes (some wallets take no text). */
function toHex(text: string): string {
  let out = "0x";
  for (const byte of new TextEncoder().encode(text)) out += byte.toString(16).padStart(2, "0");
  return out;
}

/**
 * Ask the wallet for an account, have it sign a fresh sign-in message for this site and
 * exchange the signature for a session (set as cookies by the API).
 *
 * Throws the wallet's error when the user declines, or an ApiError when the API refuses.
 */
export async function signInWithWallet(wallet: Eip1193Provider): Promise<void> {
  const accounts = (await wallet.request({ method: "eth_requestAccounts" })) as string[];
  if (!accounts.length) throw new Error("the wallet shared no account");
  const address = checksumAddress(accounts[0]);
  const chainId = Number.parseInt((await wallet.request({ method: "eth_chainId" })) as string, 16);
  const { nonce } = await api<{ nonce: string }>("/api/v1/auth/siwe/nonce");
  const message = siweMessage({
    domain: window.location.host,
    address,
    uri: window.location.origin,
    chainId,
    nonce,
    issuedAt: new Date().toISOString(),
  });
  const signature = (await wallet.request({
    method: "personal_sign",
    params: [toHex(message), address],
  })) as string;
  await api("/api/v1/auth/siwe/verify", { method: "POST", body: { message, signature } });
}
