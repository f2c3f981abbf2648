#!/usr/bin/env bash
# Starts and stops the throwaway S3-compatible server of the s3 test fixture:
# s3rver (npm) on 127.0.0.1, wrapped so that it also checks SigV4 signatures
# and payload hashes and supports AbortMultipartUpload, which s3rver 3.7.1
# does not do itself.
#
# Usage: tests/services/s3.sh start DIR | stop DIR
#   start installs s3rver into DIR/npm (once), starts it on a free port with
#   an empty data folder DIR/s3-data and the bucket bitmill-test, and writes
#   DIR/s3.url (the storage URL, with a fresh key prefix) and DIR/s3.env
#   (the credentials it accepts, KEY=VALUE lines). stop ends that server and
#   deletes its data folder, keeping its log DIR/s3.log.
set -euo pipefail

readonly S3RVER_VERSION=3.7.1
readonly BUCKET=bitmill-test
# s3rver's built-in account.
readonly ACCESS_KEY_ID=S3RVER
readonly SECRET_ACCESS_KEY=S3RVER
readonly REGION=us-east-1
readonly START_TIMEOUT_SECONDS=30

usage() {
    echo "usage: $0 start DIR | stop DIR" >&2
    exit 2
}

# Prints the PID in DIR/s3.pid when that process is still our server.
running_pid() {
    local dir=$1 pid
    [[ -f $dir/s3.pid ]] || return 1
    pid=$(<"$dir/s3.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    # The PID may have been reused by an unrelated process since.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "s3-server.js" || return 1
    echo "$pid"
}

install_s3rver() {
    local dir=$1 installed=""
    local package_json=$dir/npm/node_modules/s3rver/package.json
    if [[ -f $package_json ]]; then
        installed=$(node -p "require(process.argv[1]).version" "$package_json")
    fi
    if [[ $installed == "$S3RVER_VERSION" ]]; then
        return
    fi
    echo "s3.sh: installing s3rver $S3RVER_VERSION into $dir/npm"
    npm install --prefix "$dir/npm" --no-audit --no-fund --loglevel=error \
        "s3rver@$S3RVER_VERSION" >&2
}

# The launcher runs s3rver through its JavaScript API and puts a Koa
# middleware in front of it. s3rver 3.7.1 accepts any well-formed SigV4
# signature and has no AbortMultipartUpload. Real S3 checks signatures and
# aborts uploads, so the middleware adds both for the tests to see.
write_launcher() {
    cat >"$1" <<'JAVASCRIPT'
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const S3rver = require(process.env.S3RVER_MODULE);

const accessKeyId = process.env.S3_ACCESS_KEY_ID;
const secretAccessKey = process.env.S3_SECRET_ACCESS_KEY;
const region = process.env.S3_REGION;
const maxSkewMs = 15 * 60 * 1000;

class S3Reject extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    Object.assign(this, { status, code, extra });
  }
}

const xmlEscape = (text) =>
  String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function sendError(ctx, error) {
  const extra = Object.entries(error.extra)
    .map(([name, value]) => `<${name}>${xmlEscape(value)}</${name}>`)
    .join('');
  ctx.status = error.status;
  ctx.type = 'application/xml';
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${error.code}</Code><Message>${xmlEscape(error.message)}</Message>` +
    `${extra}</Error>`;
}

// The SigV4 rules, written independently of the C++ signer under test.
function uriEncode(text, encodeSlash) {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (c === '/' && !encodeSlash)) {
      out += c;
    } else {
      out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}

function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    throw new S3Reject(400, 'InvalidURI', `invalid percent-encoding in '${text}'`);
  }
}

function splitUrl(rawUrl) {
  const question = rawUrl.indexOf('?');
  const rawPath = question < 0 ? rawUrl : rawUrl.slice(0, question);
  const rawQuery = question < 0 ? '' : rawUrl.slice(question + 1);
  const params = rawQuery.split('&').filter((pair) => pair !== '').map((pair) => {
    const equals = pair.indexOf('=');
    return equals < 0 ? [decode(pair), ''] : [decode(pair.slice(0, equals)),
                                              decode(pair.slice(equals + 1))];
  });
  const segments = rawPath.split('/').map(decode);
  return { segments, params };
}

function canonicalQuery(params) {
  return params
    .map(([name, value]) => [uriEncode(name, true), uriEncode(value, true)])
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : (a[0] < b[0] ? -1 : 1)))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

function hmac(key, data) {
  return crypto.createHmac('sha256', key).update(data, 'utf8').digest();
}

function parseAmzDate(text) {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text || '');
  if (!match) {
    throw new S3Reject(403, 'AccessDenied', `invalid x-amz-date '${text}'`);
  }
  const [, y, mo, d, h, mi, s] = match.map(Number);
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

function checkCredential(credential, amzDate) {
  const [key, date, credentialRegion, service, terminator] = credential.split('/');
  if (key !== accessKeyId) {
    throw new S3Reject(403, 'InvalidAccessKeyId',
                       'The AWS Access Key Id you provided does not exist in our records.');
  }
  if (date !== amzDate.slice(0, 8) || credentialRegion !== region || service !== 's3' ||
      terminator !== 'aws4_request') {
    throw new S3Reject(400, 'AuthorizationHeaderMalformed',
                       `invalid credential scope '${credential}', ` +
                       `expected DATE/${region}/s3/aws4_request`);
  }
  return date;
}

function verifySignature(ctx) {
  const req = ctx.req;
  const { segments, params } = splitUrl(req.url);
  const canonicalUri = segments.map((segment) => uriEncode(segment, true)).join('/');
  const authorization = req.headers['authorization'];
  const presigned = params.some(([name]) => name === 'X-Amz-Algorithm');
  const query = Object.fromEntries(params);
  let amzDate, credential, signedHeaders, signature, payloadHash, signedParams;

  if (authorization) {
    const pattern = new RegExp('^AWS4-HMAC-SHA256 Credential=([^,\\s]+),\\s*' +
                               'SignedHeaders=([^,\\s]+),\\s*Signature=([0-9a-f]{64})$');
    const match = pattern.exec(authorization);
    if (!match) {
      throw new S3Reject(400, 'AuthorizationHeaderMalformed', 'malformed Authorization header');
    }
    [, credential, signedHeaders, signature] = match;
    amzDate = req.headers['x-amz-date'];
    payloadHash = req.headers['x-amz-content-sha256'];
    if (!payloadHash) {
      throw new S3Reject(400, 'InvalidRequest', 'missing x-amz-content-sha256');
    }
    if (!/^([0-9a-f]{64}|UNSIGNED-PAYLOAD)$/.test(payloadHash)) {
      throw new S3Reject(400, 'InvalidArgument', `invalid x-amz-content-sha256 '${payloadHash}'`);
    }
    signedParams = params;
  } else if (presigned) {
    if (query['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256') {
      throw new S3Reject(400, 'AuthorizationQueryParametersError', 'unsupported X-Amz-Algorithm');
    }
    credential = query['X-Amz-Credential'] || '';
    signedHeaders = query['X-Amz-SignedHeaders'] || '';
    signature = query['X-Amz-Signature'] || '';
    amzDate = query['X-Amz-Date'];
    payloadHash = 'UNSIGNED-PAYLOAD';
    signedParams = params.filter(([name]) => name !== 'X-Amz-Signature');
    const expires = Number(query['X-Amz-Expires']);
    if (!Number.isInteger(expires) || expires < 1 || expires > 604800) {
      throw new S3Reject(400, 'AuthorizationQueryParametersError', 'invalid X-Amz-Expires');
    }
    if (Date.now() > parseAmzDate(amzDate) + expires * 1000) {
      throw new S3Reject(403, 'AccessDenied', 'Request has expired');
    }
  } else {
    throw new S3Reject(403, 'AccessDenied',
                       'Anonymous requests are rejected by the bitmill test server.');
  }

  const date = checkCredential(credential, amzDate || '');
  if (authorization && Math.abs(Date.now() - parseAmzDate(amzDate)) > maxSkewMs) {
    throw new S3Reject(403, 'RequestTimeTooSkewed',
                       'The difference between the request time and the current time ' +
                       'is too large.');
  }
  const headerNames = signedHeaders.split(';');
  const amzHeaders = Object.keys(req.headers).filter((name) => name.startsWith('x-amz-'));
  const required = ['host', ...amzHeaders];
  for (const name of required) {
    if (!headerNames.includes(name)) {
      throw new S3Reject(403, 'AccessDenied', `header '${name}' is sent but not signed`);
    }
  }
  const canonicalHeaders = headerNames
    .map((name) => `${name}:${String(req.headers[name] ?? '').trim().replace(/ +/g, ' ')}\n`)
    .join('');
  const canonicalRequest = [req.method, canonicalUri, canonicalQuery(signedParams),
                            canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope,
                        crypto.createHash('sha256').update(canonicalRequest, 'utf8').digest('hex')]
                         .join('\n');
  let key = hmac('AWS4' + secretAccessKey, date);
  for (const part of [region, 's3', 'aws4_request']) {
    key = hmac(key, part);
  }
  const expected = hmac(key, stringToSign).toString('hex');
  if (expected !== signature) {
    throw new S3Reject(403, 'SignatureDoesNotMatch',
                       'The request signature we calculated does not match the signature ' +
                       'you provided.',
                       { CanonicalRequest: canonicalRequest, StringToSign: stringToSign });
  }
  return { segments, query, payloadHash };
}

function fileSha256(file) {
  const hash = crypto.createHash('sha256');
  const buffer = Buffer.alloc(1 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    let got;
    while ((got = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0) {
      hash.update(buffer.subarray(0, got));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

function uploadsFolder(store, bucket) {
  return store.getResourcePath(bucket, undefined, 'uploads');
}

async function s3Checks(ctx, next) {
  let request;
  try {
    request = verifySignature(ctx);
  } catch (error) {
    if (error instanceof S3Reject) {
      return sendError(ctx, error);
    }
    throw error;
  }
  const [, bucket, ...keySegments] = request.segments;
  const key = keySegments.join('/');
  const store = ctx.app.store;

  // AbortMultipartUpload: DELETE /bucket/key?uploadId=ID.
  if (ctx.method === 'DELETE' && 'uploadId' in request.query && key) {
    const folder = path.join(uploadsFolder(store, bucket), request.query.uploadId);
    const keyFile = path.join(folder, 'key');
    if (!fs.existsSync(keyFile) || fs.readFileSync(keyFile, 'utf8') !== key) {
      return sendError(ctx, new S3Reject(404, 'NoSuchUpload',
                                         'The specified multipart upload does not exist.'));
    }
    fs.rmSync(folder, { recursive: true, force: true });
    ctx.status = 204;
    return;
  }

  await next();

  // s3rver stores PUT bodies without checking x-amz-content-sha256; check
  // the stored bytes before the response leaves.
  if (ctx.method !== 'PUT' || ctx.status !== 200 || !/^[0-9a-f]{64}$/.test(request.payloadHash)) {
    return;
  }
  const stored = 'uploadId' in request.query
    ? path.join(uploadsFolder(store, bucket), request.query.uploadId,
                String(request.query.partNumber))
    : store.getResourcePath(bucket, key, 'object');
  const actual = fileSha256(stored);
  if (actual !== request.payloadHash) {
    sendError(ctx, new S3Reject(400, 'XAmzContentSHA256Mismatch',
                                "The provided 'x-amz-content-sha256' header does not match " +
                                'what was computed.',
                                { ClientComputedContentSHA256: request.payloadHash,
                                  S3ComputedContentSHA256: actual }));
  }
}

async function main() {
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory: process.env.S3_DATA_DIR,
    configureBuckets: [{ name: process.env.S3_BUCKET, configs: [] }],
  });
  server.middleware.unshift(s3Checks);
  const { port } = await server.run();
  fs.writeFileSync(process.env.S3_PORT_FILE + '.tmp', String(port));
  fs.renameSync(process.env.S3_PORT_FILE + '.tmp', process.env.S3_PORT_FILE);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
JAVASCRIPT
}

start() {
    local dir=$1
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    for tool in node npm; do
        if ! command -v "$tool" >/dev/null; then
            echo "s3.sh: '$tool' not found; install Node.js and npm" \
                "(scripts/install-deps.sh test)" >&2
            exit 1
        fi
    done
    stop "$dir"
    install_s3rver "$dir"
    write_launcher "$dir/s3-server.js"

    # Every run starts from an empty bucket.
    rm -rf "$dir/s3-data" "$dir/s3.port"
    mkdir -p "$dir/s3-data"
    S3RVER_MODULE="$dir/npm/node_modules/s3rver" \
        S3_DATA_DIR="$dir/s3-data" S3_PORT_FILE="$dir/s3.port" S3_BUCKET="$BUCKET" \
        S3_ACCESS_KEY_ID="$ACCESS_KEY_ID" S3_SECRET_ACCESS_KEY="$SECRET_ACCESS_KEY" \
        S3_REGION="$REGION" \
        setsid node "$dir/s3-server.js" >"$dir/s3.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/s3.pid"

    local deadline=$((SECONDS + START_TIMEOUT_SECONDS)) port=""
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "s3.sh: the server exited during startup; its log ($dir/s3.log):" >&2
            cat "$dir/s3.log" >&2
            exit 1
        fi
        if [[ -s $dir/s3.port ]]; then
            port=$(<"$dir/s3.port")
            if node -e "require('http').get('http://127.0.0.1:' + process.argv[1] + '/',
                            () => process.exit(0)).on('error', () => process.exit(1))" "$port"; then
                break
            fi
        fi
        port=""
        sleep 0.2
    done
    if [[ -z $port ]]; then
        echo "s3.sh: the server did not answer within $START_TIMEOUT_SECONDS s;" \
            "log: $dir/s3.log" >&2
        stop "$dir"
        exit 1
    fi

    # A fresh prefix per run, so objects of an earlier run never match.
    local prefix
    prefix="run-$(date +%s)-$$"
    echo "s3://$BUCKET/$prefix?endpoint=http://127.0.0.1:$port&region=$REGION&path_style=true" \
        >"$dir/s3.url"
    printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$ACCESS_KEY_ID" \
        "$SECRET_ACCESS_KEY" >"$dir/s3.env"
    echo "s3.sh: s3rver $S3RVER_VERSION listening on 127.0.0.1:$port (pid $pid)"
}

stop() {
    local dir=$1 pid
    if pid=$(running_pid "$dir"); then
        kill "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid"
        fi
        echo "s3.sh: stopped the server (pid $pid)"
    fi
    # The log stays for debugging; the objects of the run go.
    rm -rf "$dir/s3-data"
    rm -f "$dir/s3.pid" "$dir/s3.port" "$dir/s3.url" "$dir/s3.env"
}

[[ $# -eq 2 ]] || usage
case $1 in
    start) start "$2" ;;
    stop) stop "$2" ;;
    *) usage ;;
esac
