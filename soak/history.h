// The soak's record of what happened, and the judge of it: every request the load generator made
// (operation, user, answer, when it was sent and answered) and the checks that need no I/O.
//
// Ownership makes the history decidable: each writer owns its ids, so the writes to one id never
// overlap in time and "the latest acknowledged write" is simply the last one answered 2xx. What a
// write did is one of three things:
//   applied    2xx (PUT 200/201, DELETE 204) or DELETE 404 (there was nothing to delete): its effect
//              is in MariaDB, in this order with the id's other writes;
//   no effect  a 503 whose body says MariaDB was not called (breaker open: "MariaDB unavailable");
//   unknown    any other 503, or no answer at all: it may have committed (the one ambiguity no
//              system avoids: only the acknowledgement was lost).
// A state of one id is `kAbsent` or the sequence number of the write whose name it holds.
//
// Names are self-checking: make_name(id, seq) is deterministic, parse_name() recovers (id, seq) and
// rejects anything that is not exactly such a name, so a read can tell a corrupted, truncated or
// misdirected value from a real one.
//
// Usage:
//   History h(ids);                                       // ids: every id of the run
//   h.add(Record{...});                                   // as answers arrive (one thread)
//   auto final = h.check_final(id_index, stored_state);   // against MariaDB at the end
//   auto reads = h.check_reads();                         // every read against the writes
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace soak {

enum class Op : std::uint8_t { get, put, del };
std::string_view op_name(Op op);

// Status values below zero: no HTTP answer.
enum Transport : int {
  kRefused = -1,  // connection refused
  kReset = -2,    // connection reset by the peer
  kClosed = -3,   // closed before a complete answer
  kTimeout = -4,  // no answer within the client's timeout
  kOther = -5,    // any other socket or protocol error
};
std::string status_name(int status);

// X-Data-Source: cache, origin (the MariaDB primary) or origin-replica (the HA stack's replica, read
// while the primary cannot answer).
enum class Source : std::uint8_t { none, cache, origin, origin_replica };
std::string_view source_name(Source s);  // as the header spells it; "none" for none

using State = std::int64_t;  // kAbsent, or the seq of the write whose value is stored
inline constexpr State kAbsent = -1;
inline constexpr State kUnparsable = -2;  // a read answered something that is no name of this id

struct Record {
  Op op = Op::get;
  std::uint32_t id = 0;      // index into the run's ids
  State state = kAbsent;     // put: the seq written; get: what it returned (kAbsent for 404)
  int status = 0;            // HTTP status, or a Transport value
  std::int64_t sent_us = 0;  // when the request started to be written (steady clock, since start)
  std::int64_t done_us = 0;  // when the answer was complete (or the error seen)
  Source source = Source::none;
  bool stale = false;           // X-Cache-Stale: true
  bool retry_after = false;     // Retry-After present
  bool body_ok = true;          // the body is what the status promises (right id, right name)
  bool short_circuit = false;   // 503 saying MariaDB was not called
  std::uint16_t reason = 0;     // the error text of a 503 (History::intern), 0 if none
  std::uint16_t served_by = 0;  // X-Served-By (HAProxy: which instance answered), History::intern
};

enum class Effect : std::uint8_t { applied, none, unknown };
Effect effect_of(const Record& write);
// The state a write leaves when it takes effect.
State state_after(const Record& write);

// Names: "<id>~<seq>~<pad>"; the pad (0..150 characters, some of them JSON-escaped or multi-byte
// UTF-8) is derived from (id, seq), so a name is at most 255 bytes for ids up to 64 bytes.
std::string make_name(std::string_view id, std::uint64_t seq);
// The seq of `name` if it is exactly make_name(id, seq) for some seq.
std::optional<std::uint64_t> parse_name(std::string_view id, std::string_view name);

// Whether `status` is an answer the contract allows for `op`.
bool allowed_status(Op op, int status);

struct FinalVerdict {
  enum Kind {
    ok,                   // the latest applied write's state
    ok_unacknowledged,    // the state of an unknown-outcome write sent after the latest applied one
    late_unacknowledged,  // the state of an unknown-outcome write sent BEFORE the latest applied one:
                          // it landed after a write that was acknowledged later (a lost update)
    lost,                 // an older state or absent: the latest acknowledged write is missing
    unknown,              // a state no write of this id produced
  } kind = ok;
  State expected = kAbsent;  // the latest applied write's state
  std::string detail;
};
std::string_view verdict_name(FinalVerdict::Kind k);

struct ReadViolation {
  std::size_t read = 0;  // index into records()
  State expected = kAbsent;
  bool late_unacknowledged = false;  // explained by an unknown-outcome write sent before it
  std::int64_t staleness_us = 0;     // see ReadReport::max_staleness_us
  std::string detail;
};

// A read's staleness: how long before it was sent the value it returned had been superseded by an
// acknowledged write (0 if it returned a state it may return: the last acknowledged one, or one of a
// write of known or unknown effect sent later). check_reads(tolerance) flags the reads whose staleness
// exceeds the tolerance: 0 is the strict check (one instance: a known-stale value is never served);
// the HA stack's contract across instances is 1 s.
struct ReadReport {
  std::int64_t tolerance_us = 0;
  std::uint64_t within_tolerance = 0;  // unmarked reads stale by at most the tolerance (> 0)
  // Stale by more than the tolerance, but the write they missed was acknowledged while no Redis
  // master was reachable (a window given to check_reads) and they were sent within the tolerance of
  // that window's end: the HA contract's bound holds "whenever some Redis master is reachable".
  std::uint64_t excused = 0;
  std::int64_t max_excused_us = 0;      // the largest staleness among them
  std::int64_t max_staleness_us = 0;    // the largest staleness of an unmarked read (any source)
  std::size_t max_staleness_read = 0;   // that read (index into records()), if max_staleness_us > 0
  std::size_t max_staleness_write = 0;  // the acknowledged write it missed (index into records())
  std::uint64_t checked_origin = 0, checked_cache = 0, marked_stale = 0;
  std::vector<ReadViolation> origin;   // reads from MariaDB older than the last acknowledged write
  std::vector<ReadViolation> cache;    // unmarked cache reads older than the last acknowledged write
  std::vector<ReadViolation> unknown;  // values no write produced (or not yet sent), any source
};

class History {
 public:
  explicit History(std::vector<std::string> ids);

  const std::vector<std::string>& ids() const { return ids_; }
  void add(const Record& r);
  const std::vector<Record>& records() const { return records_; }

  // `stored`: the id's state in MariaDB at the end.
  FinalVerdict check_final(std::uint32_t id, State stored) const;
  // Unmarked reads (cache or origin) stale by more than `tolerance_us` are violations, unless the
  // write they missed was acknowledged inside one of `no_master` (from, to) windows and they were sent
  // at most `tolerance_us` after its end.
  using Window = std::pair<std::int64_t, std::int64_t>;
  ReadReport check_reads(std::int64_t tolerance_us = 0, const std::vector<Window>& no_master = {}) const;
  // `stored`: the id's state in a MariaDB node read just now (after a failover), against the writes
  // acknowledged before `cutoff_us` (the primary's loss): ok if it is the latest of them, or the state
  // of any later write that may have had an effect; otherwise `lost`.
  FinalVerdict check_at(std::uint32_t id, State stored, std::int64_t cutoff_us) const;
  // Writes to `id` in the order they were sent (indexes into records()).
  const std::vector<std::size_t>& writes_of(std::uint32_t id) const { return writes_[id]; }
  // The number of acknowledged (applied) writes over all ids.
  std::uint64_t applied_writes() const;

  // A short index for an error text (at most 4096 distinct ones; later ones share the last index).
  std::uint16_t intern(std::string_view text);
  const std::string& reason_text(std::uint16_t reason) const {
    return reasons_[reason < reasons_.size() ? reason : 0];
  }
  std::string describe(std::size_t record) const;
  // The last acknowledged write of `id` and up to `n` later writes that may have had an effect.
  std::string last_writes(std::uint32_t id, std::size_t n) const;

 private:
  std::vector<std::string> reasons_{""};
  std::vector<std::string> ids_;
  std::vector<Record> records_;
  std::vector<std::vector<std::size_t>> writes_;  // per id, sorted by sent_us (one writer per id)
};

}  // namespace soak
