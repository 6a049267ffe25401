// The OIDC peer of `make bench`: panva's oidc-provider (OpenID Certified), configured for the grants we measure
// (client credentials, authorization code with PKCE S256 and refresh tokens, introspection), its tokens in Redis
// through the adapter below (after the project's example/adapters/redis.js), in a node cluster of PEER_WORKERS
// processes on 127.0.0.1:PEER_PORT.
//
// Environment: PEER_PORT, PEER_WORKERS, PEER_REDIS_SOCKET (a Unix socket), PEER_SECRETS ({client_id: secret} for
// the two clients, chosen by the bench driver).
//
// One addition that is not part of the provider: `POST /_bench/codes {"n", "code_challenge", "nonce"}` makes n
// authorization codes for bench-portal through the provider's own models (a Grant and an AuthorizationCode each,
// saved through the adapter), as the end of its login and consent interaction would, so that code redemption at
// the token endpoint can be measured without driving that interaction n times. It answers {"codes": [...]}.

import cluster from 'node:cluster';
import crypto from 'node:crypto';
import http from 'node:http';

import { Redis } from 'ioredis';
import Provider from 'oidc-provider';

const PORT = Number(process.env.PEER_PORT);
const WORKERS = Number(process.env.PEER_WORKERS || 2);
const REDIRECT_URI = 'http://127.0.0.1:9/cb';
const ACCOUNT = 'bench-citizen';

if (cluster.isPrimary) {
  // Keys every worker shares: the ES256 signing key, the cookie keys and the pairwise salt.
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', use: 'sig', alg: 'ES256' };
  const shared = JSON.stringify({
    jwk,
    cookieKey: crypto.randomBytes(32).toString('base64url'),
    salt: crypto.randomBytes(32).toString('base64url'),
  });
  for (let i = 0; i < WORKERS; i += 1) cluster.fork({ PEER_SHARED: shared });
  cluster.on('exit', (worker, code, signal) => {
    console.error(`worker ${worker.process.pid} exited (${signal || code})`);
    process.exit(1);
  });
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
      process.exit(0);
    });
  }
} else {
  const { jwk, cookieKey, salt } = JSON.parse(process.env.PEER_SHARED);
  const secrets = JSON.parse(process.env.PEER_SECRETS);
  const redis = new Redis({ path: process.env.PEER_REDIS_SOCKET, keyPrefix: 'oidc:' });

  // ------------------------------------------------------------------ Redis adapter (example/adapters/redis.js)
  const grantable = new Set([
    'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest',
  ]);
  const consumable = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
  const grantKeyFor = (id) => `grant:${id}`;
  const userCodeKeyFor = (userCode) => `userCode:${userCode}`;
  const uidKeyFor = (uid) => `uid:${uid}`;

  class RedisAdapter {
    constructor(name) {
      this.name = name;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const multi = redis.multi();
      if (consumable.has(this.name)) {
        multi.hset(key, { payload: JSON.stringify(payload) });
      } else {
        multi.set(key, JSON.stringify(payload));
      }
      if (expiresIn) multi.expire(key, expiresIn);
      if (grantable.has(this.name) && payload.grantId) {
        const grantKey = grantKeyFor(payload.grantId);
        multi.rpush(grantKey, key);
        const ttl = await redis.ttl(grantKey);
        if (expiresIn > ttl) multi.expire(grantKey, expiresIn);
      }
      if (payload.userCode) {
        multi.set(userCodeKeyFor(payload.userCode), id);
        multi.expire(userCodeKeyFor(payload.userCode), expiresIn);
      }
      if (payload.uid) {
        multi.set(uidKeyFor(payload.uid), id);
        multi.expire(uidKeyFor(payload.uid), expiresIn);
      }
      await multi.exec();
    }

    async find(id) {
      const data = consumable.has(this.name) ? await redis.hgetall(this.key(id)) : await redis.get(this.key(id));
      if (!data || (typeof data === 'object' && Object.keys(data).length === 0)) return undefined;
      if (typeof data === 'string') return JSON.parse(data);
      const { payload, ...rest } = data;
      return { ...rest, ...JSON.parse(payload) };
    }

    async findByUid(uid) {
      return this.find(await redis.get(uidKeyFor(uid)));
    }

    async findByUserCode(userCode) {
      return this.find(await redis.get(userCodeKeyFor(userCode)));
    }

    async destroy(id) {
      await redis.del(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const multi = redis.multi();
      const tokens = await redis.lrange(grantKeyFor(grantId), 0, -1);
      tokens.forEach((token) => multi.del(token));
      multi.del(grantKeyFor(grantId));
      await multi.exec();
    }

    async consume(id) {
      await redis.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }

    key(id) {
      return `${this.name}:${id}`;
    }
  }

  // ------------------------------------------------------------------ the provider
  const provider = new Provider(`http://127.0.0.1:${PORT}`, {
    adapter: RedisAdapter,
    clients: [
      {
        client_id: 'bench-cc',
        client_secret: secrets['bench-cc'],
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
      },
      {
        client_id: 'bench-portal',
        client_secret: secrets['bench-portal'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
        subject_type: 'pairwise',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [cookieKey] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
    },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access'],
    subjectTypes: ['public', 'pairwise'],
    pairwiseIdentifier: async (ctx, accountId, client) => crypto
      .createHmac('sha256', salt).update(`${client.sectorIdentifier}|${accountId}`).digest('base64url'),
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    ttl: {
      AccessToken: 600,
      ClientCredentials: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      RefreshToken: 30 * 24 * 3600,
      Grant: 30 * 24 * 3600,
      Interaction: 600,
      Session: 24 * 3600,
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));

  // ------------------------------------------------------------------ bench-only: authorization codes
  async function mintCodes({ n, code_challenge: codeChallenge, nonce }) {
    const client = await provider.Client.find('bench-portal');
    const authTime = Math.floor(Date.now() / 1000);
    const one = async () => {
      const grant = new provider.Grant({ accountId: ACCOUNT, clientId: client.clientId });
      grant.addOIDCScope('openid offline_access');
      const grantId = await grant.save();
      const code = new provider.AuthorizationCode({
        accountId: ACCOUNT,
        acr: 'urn:bench:wz',
        authTime,
        client,
        codeChallenge,
        codeChallengeMethod: 'S256',
        expiresWithSession: false,
        grantId,
        nonce,
        redirectUri: REDIRECT_URI,
        scope: 'openid offline_access',
        sid: crypto.randomUUID(),
      });
      return code.save();
    };
    const codes = [];
    for (let i = 0; i < n; i += 64) {
      codes.push(...await Promise.all(Array.from({ length: Math.min(64, n - i) }, one)));
    }
    return codes;
  }

  const handler = provider.callback();
  http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/_bench/codes') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        mintCodes(JSON.parse(Buffer.concat(chunks).toString()))
          .then((codes) => {
            const body = JSON.stringify({ codes });
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
            res.end(body);
          })
          .catch((err) => {
            console.error(err);
            res.writeHead(500, { 'content-length': 0 });
            res.end();
          });
      });
      return;
    }
    handler(req, res);
  }).listen(PORT, '127.0.0.1');
}
