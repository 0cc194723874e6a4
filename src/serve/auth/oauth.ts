/**
 * OAuth 2.1 resource-server side: validate JWT access tokens (RFC 9068 style)
 * issued by one configured authorization server. Keys come from the issuer's
 * JWKS, found through RFC 8414 / OpenID discovery or given as jwksUri; jose
 * caches them and refetches (rate-limited) when an unknown key id appears.
 * Checked: signature (asymmetric algorithms only), exp (required) and nbf
 * with a small clock tolerance, iss, aud.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { sanitizeUntrusted } from '../../common/untrusted.js';

export interface OAuthConfig {
  issuer: string;
  audience: string;
  jwksUri?: string;
  /** seconds of clock skew tolerated on exp/nbf/iat (default 30) */
  clockToleranceS?: number;
}

export interface VerifiedJwt {
  clientId: string;
  scopes: string[];
  /** seconds since epoch */
  expiresAt: number;
  tokenId?: string;
}

export class TokenRejected extends Error {
  constructor(
    /** short machine reason, used in the audit trail (auth/<reason>) */
    readonly reason: 'expired' | 'not_yet_valid' | 'wrong_issuer' | 'wrong_audience' | 'bad_signature' | 'unknown_key' | 'malformed' | 'claims',
    /** safe to send back in error_description: never contains the token */
    readonly description: string,
  ) {
    super(description);
  }
}

/** The authorization server could not be reached: not the client's fault. */
export class IssuerUnavailable extends Error {}

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const DISCOVERY_TIMEOUT_MS = 5000;

/** Candidate discovery URLs for an issuer: RFC 8414 (path inserted) first, then OpenID Connect (path appended). */
export function discoveryUrls(issuer: string): string[] {
  const u = new URL(issuer);
  const p = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
  return [
    `${u.origin}/.well-known/oauth-authorization-server${p}`,
    `${u.origin}${p}/.well-known/openid-configuration`,
    `${u.origin}/.well-known/openid-configuration${p}`,
  ];
}

async function discoverJwksUri(issuer: string): Promise<string> {
  let lastError = '';
  for (const url of discoveryUrls(issuer)) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS), redirect: 'error', headers: { accept: 'application/json' } });
      if (!res.ok) {
        lastError = `${url}: HTTP ${res.status}`;
        continue;
      }
      const meta = (await res.json()) as { issuer?: string; jwks_uri?: string };
      // RFC 8414 §3.3: the issuer in the document must be the one we asked for.
      if (meta.issuer !== issuer) {
        lastError = `${url}: metadata names issuer ${JSON.stringify(sanitizeUntrusted(meta.issuer, 200))}`;
        continue;
      }
      if (typeof meta.jwks_uri !== 'string') {
        lastError = `${url}: no jwks_uri`;
        continue;
      }
      return meta.jwks_uri;
    } catch (e) {
      lastError = `${url}: ${(e as Error).message}`;
    }
  }
  throw new IssuerUnavailable(`cannot discover the JWKS of ${issuer} (${lastError})`);
}

export class JwtVerifier {
  private jwks: ReturnType<typeof createRemoteJWKSet> | null = null;
  private jwksPromise: Promise<ReturnType<typeof createRemoteJWKSet>> | null = null;

  constructor(
    private readonly cfg: OAuthConfig,
    private readonly now: () => number = Date.now,
  ) {
    new URL(cfg.issuer); // fail fast on a malformed issuer
  }

  private keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.jwks) return Promise.resolve(this.jwks);
    if (!this.jwksPromise) {
      this.jwksPromise = (async () => {
        const uri = this.cfg.jwksUri ?? (await discoverJwksUri(this.cfg.issuer));
        this.jwks = createRemoteJWKSet(new URL(uri), { timeoutDuration: DISCOVERY_TIMEOUT_MS, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
        return this.jwks;
      })().catch((e) => {
        this.jwksPromise = null; // retry discovery on the next request
        throw e;
      });
    }
    return this.jwksPromise;
  }

  /** Resolve the key set now (startup check); throws IssuerUnavailable. */
  async prime(): Promise<void> {
    await this.keySet();
  }

  async verify(token: string): Promise<VerifiedJwt> {
    const jwks = await this.keySet();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: this.cfg.issuer,
        audience: this.cfg.audience,
        algorithms: ALGORITHMS,
        clockTolerance: this.cfg.clockToleranceS ?? 30,
        currentDate: new Date(this.now()),
        requiredClaims: ['exp'],
      }));
    } catch (e) {
      throw mapJoseError(e);
    }
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : Array.isArray(payload.scp) ? (payload.scp as unknown[]).filter((s): s is string => typeof s === 'string') : [];
    const rawClient = (payload.client_id ?? payload.azp ?? payload.sub) as unknown;
    if (typeof rawClient !== 'string' || !rawClient) throw new TokenRejected('claims', 'token names no client (client_id, azp or sub)');
    return {
      clientId: sanitizeUntrusted(rawClient, 128),
      scopes,
      expiresAt: payload.exp as number,
      tokenId: typeof payload.jti === 'string' ? sanitizeUntrusted(payload.jti, 64) : undefined,
    };
  }
}

function mapJoseError(e: unknown): Error {
  if (e instanceof IssuerUnavailable) return e;
  if (e instanceof joseErrors.JWTExpired) return new TokenRejected('expired', 'token expired');
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'iss') return new TokenRejected('wrong_issuer', 'token was issued by another issuer');
    if (e.claim === 'aud') return new TokenRejected('wrong_audience', 'token was not issued for this resource');
    if (e.claim === 'nbf') return new TokenRejected('not_yet_valid', 'token is not yet valid');
    return new TokenRejected('claims', `token claim ${e.claim} is invalid`);
  }
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return new TokenRejected('bad_signature', 'token signature is invalid');
  if (e instanceof joseErrors.JWKSNoMatchingKey || e instanceof joseErrors.JWKSMultipleMatchingKeys) return new TokenRejected('unknown_key', 'token is signed with an unknown key');
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return new TokenRejected('bad_signature', 'token signing algorithm is not allowed');
  if (e instanceof joseErrors.JWKSTimeout || (e instanceof joseErrors.JOSEError && e.code === 'ERR_JOSE_GENERIC' && /fetch|network/i.test(e.message))) {
    return new IssuerUnavailable('cannot fetch the issuer JWKS');
  }
  if (e instanceof joseErrors.JWTInvalid || e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JOSEError) return new TokenRejected('malformed', 'token is not a valid JWT');
  if (e instanceof TypeError) return new IssuerUnavailable('cannot fetch the issuer JWKS');
  return new TokenRejected('malformed', 'token is not a valid JWT');
}
