//! The Lua scripts, each small and each touching only keys of one hash slot (the caller
//! passes them in `KEYS`, so a cluster routes the script to the node that owns them).

use redis::Script;

/// Settles an elicitation if it still holds exactly the bytes the caller judged pending:
/// KEYS[1] elicitation, ARGV[1] expected, ARGV[2] settled. With KEYS[2] (the grant hash,
/// same tag), ARGV[3] (grant JSON), ARGV[4] (grant id) and ARGV[5] (its use count, where
/// counting starts) it also creates the grant; an existing grant is never overwritten (-1).
/// A non-empty ARGV[6] (ms since the epoch) replaces the elicitation's expiry; otherwise its
/// TTL is kept. Returns 1 when written, 0 when the elicitation changed or is gone.
const SETTLE: &str = r"
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then return 0 end
if #KEYS > 1 then
  if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
  redis.call('HSET', KEYS[2], 'record', ARGV[3], 'id', ARGV[4], 'uses', ARGV[5])
end
if ARGV[6] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[6])
else
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
end
return 1
";

/// Replaces a grant's `record` if it still equals ARGV[1]: KEYS[1] grant hash, ARGV[2]
/// new record. Returns 1 when written, 0 when it changed or is gone.
const REPLACE_GRANT: &str = r"
local current = redis.call('HGET', KEYS[1], 'record')
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[2])
return 1
";

/// Counts one use of grant ARGV[2]: KEYS[1] grant hash, ARGV[1] time (RFC 3339).
/// Returns 1, or 0 when the hash holds no grant or another one.
const RECORD_USE: &str = r"
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[2] then return 0 end
redis.call('HINCRBY', KEYS[1], 'uses', 1)
redis.call('HSET', KEYS[1], 'last_used', ARGV[1])
return 1
";

/// Releases a lock only for its holder: KEYS[1] lock, ARGV[1] token. Returns 1 or 0.
const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Adds a registered service unless its id is taken: KEYS[1] services, KEYS[2] credential
/// index; ARGV[1] id, ARGV[2] record, ARGV[3..] its credential digests. Returns 1 or 0.
const INSERT_SERVICE: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
for i = 3, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], ARGV[1]) end
return 1
";

/// Replaces (or, with an empty ARGV[3], deletes) a registered service if it is still
/// ARGV[2]: KEYS as for INSERT_SERVICE; ARGV[1] id, ARGV[4] the number n of the old
/// record's digests, ARGV[5 .. 4+n] those digests, the rest the new record's. Returns 1 or 0.
const REPLACE_SERVICE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
local n = tonumber(ARGV[4])
for i = 5, 4 + n do redis.call('HDEL', KEYS[2], ARGV[i]) end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
for i = 5 + n, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], ARGV[1]) end
return 1
";

/// Takes one use of an initial access token: KEYS[1] uses, KEYS[2] expiries; ARGV[1]
/// digest, ARGV[2] now (ms). Returns the uses left after this one, or -1 when it has none
/// left, has expired or is unknown.
const USE_INITIAL_TOKEN: &str = r"
local exp = redis.call('HGET', KEYS[2], ARGV[1])
if not exp or tonumber(exp) <= tonumber(ARGV[2]) then return -1 end
local left = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if left <= 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
";

#[derive(Clone, Debug)]
pub(super) struct Scripts {
    pub settle: Script,
    pub replace_grant: Script,
    pub record_use: Script,
    pub unlock: Script,
    pub insert_service: Script,
    pub replace_service: Script,
    pub use_initial_token: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            settle: Script::new(SETTLE),
            replace_grant: Script::new(REPLACE_GRANT),
            record_use: Script::new(RECORD_USE),
            unlock: Script::new(UNLOCK),
            insert_service: Script::new(INSERT_SERVICE),
            replace_service: Script::new(REPLACE_SERVICE),
            use_initial_token: Script::new(USE_INITIAL_TOKEN),
        }
    }
}
