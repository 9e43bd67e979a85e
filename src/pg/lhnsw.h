// The lhnsw access method: an HNSW graph in index pages.
// Byte format: include/libravdb/core/hnsw/format.h and src/core/hnsw/FORMAT.md.
#pragma once

#include <vector>

#include "am_common.h"
#include "am_stream.h"

#include "libravdb/core/common/visited.h"
#include "libravdb/core/hnsw/format.h"
#include "libravdb/core/hnsw/search.h"
#include "libravdb/core/quantizer.h"

namespace lrv::pg::lhnsw {

namespace hn = core::hnsw;

constexpr uint32 kMagic = hn::kMagic;
constexpr BlockNumber kMetaBlock = 0;
// A heavyweight page lock (LockPage, apart from the buffer's content lock):
// each insert holds it in share mode from its search to its last link back;
// VACUUM takes it exclusively, once, to wait for the inserts in flight.
constexpr BlockNumber kInsertLock = kMetaBlock;

struct Options {
    int32 vl_len_;
    int m;
    int ef_construction;
    int ef_search;  // 0: not set (the GUC decides)
    int quantizer;  // core::QuantizerKind
};

// GUCs (registered in _PG_init through register_gucs).
extern int ef_search_guc;
extern bool ef_search_guc_explicit;
extern int max_scan_tuples_guc;
void register_gucs();
// ef_search for a scan of `index`: a value SET in the session, else the
// index's ef_search option, else the GUC's default.
int effective_ef_search(Relation index);

// A copy of the metapage, validated (XX002 on corruption).
hn::MetaPage read_meta(Relation index);
hn::MetaPage meta_from_buffer(Relation index, Buffer buf);
void put_meta(Page page, const hn::MetaPage& meta);
void apply_meta(Page page, void* meta);  // for stream_write's extra buffer

inline Stream slot_stream(Relation index, const hn::MetaPage& meta) {
    return Stream{index, kMagic, kPageHnswData, meta.slot_size, meta.data_per_page};
}
inline core::QuantizerParams quantizer_params(const hn::MetaPage& meta) {
    core::QuantizerParams qp;
    qp.kind = static_cast<core::QuantizerKind>(meta.quantizer);
    qp.lo = meta.sq_lo;
    qp.step = meta.sq_step;
    return qp;
}
inline uint64 tid_to_key(ItemPointer tid) {
    return (static_cast<uint64>(ItemPointerGetBlockNumberNoCheck(tid)) << 16) | ItemPointerGetOffsetNumberNoCheck(tid);
}
inline void key_to_tid(uint64 key, ItemPointer tid) {
    ItemPointerSet(tid, static_cast<BlockNumber>(key >> 16), static_cast<OffsetNumber>(key & 0xffff));
}

// True when the vector takes part in the graph: not NULL, and not a zero
// vector under cosine (its distance to anything is undefined).
bool graphable(core::distance::Metric metric, const float* x, int dims);

// Reads nodes through shared buffers: the store interface of
// core/hnsw/search.h for scans and inserts. Every Postgres call it makes runs
// under guard_pg, so an ERROR (a corrupted page, a cancel) becomes a C++
// exception while core frames are live, re-raised at the entry point.
//
// A graph search touches a few thousand nodes on as many pages. Finding a
// page through the buffer mapping table is most of a node read's cost, so
// the store remembers, per block, the buffer that held it last time (in a
// backend-local table that outlives the scan) and asks ReadRecentBuffer to
// pin that buffer directly; only when the page has moved does it go through
// ReadBuffer. One page is pinned at a time.
class PageGraph {
  public:
    PageGraph(Relation index, const hn::MetaPage& meta);
    // Starts over for a new scan of the same index (metapage re-read).
    void reset(const hn::MetaPage& meta);
    // The query distances are measured from (not owned).
    void set_query(const core::QueryCoder* coder) { coder_ = coder; }
    void reset_visited();

    bool evaluate(uint32 id, hn::Candidate* c);
    void links(uint32 id, int level, std::vector<uint32>* out);
    bool visit(uint32 id);
    // Prefetches the buffer descriptor and the start of the node, where the
    // block's buffer is known: a hint to the CPU, harmless if stale.
    void prefetch(uint32 id) const noexcept;

    // ERROR (XX002, under guard_pg) naming slot `slot`.
    [[noreturn]] void corrupt(uint32 slot, const char* what) const;
    // Header of a slot (kSlotFree for a slot past the end of the index).
    hn::NodeHeader header(uint32 id);
    // Decoded vector of a node, for distances between two nodes.
    void vector(uint32 id, float* out);
    // Where the links of `id` at `level` live: slot and byte range; false if
    // the node has no such level.
    bool links_location(uint32 id, int level, uint32* slot, uint32* from, uint32* to);
    // Copies bytes [from, to) of a slot (guarded).
    void read(uint32 slot, uint32 from, uint32 to, uint8* out);
    // The upper slots of node `id`, in chain order: each an upper slot
    // naming `id` as its owner (the chain ends at the first that does not).
    void upper_slots(uint32 id, std::vector<uint32>* out);

    const hn::Layout& layout() const { return layout_; }
    const hn::MetaPage& meta() const { return meta_; }
    const Stream& stream() const { return stream_; }
    uint64 reads() const { return reads_; }
    // Nodes evaluated since construction (all scans of this store).
    uint64 evaluations() const { return evaluations_; }

  private:
    // Pins the buffer holding data page `page`.
    Buffer pin(uint64 page);
    // Calls fn(bytes) with bytes [from, to) of a slot: in place under a share
    // lock when they lie on one page, else copied into buf_.
    template <typename Fn>
    void with_bytes(uint32 slot, uint32 from, uint32 to, Fn&& fn);

    Relation index_;
    std::vector<Buffer>* recent_;  // per block: the buffer that held it (backend-local)
    hn::MetaPage meta_;
    hn::Layout layout_;
    Stream stream_;
    const core::QueryCoder* coder_ = nullptr;
    core::VisitedSet visited_;
    std::vector<uint8> buf_;  // one slot, for bytes that cross a page boundary
    std::vector<uint32> ids_;
    uint64 reads_ = 0;
    uint64 evaluations_ = 0;
    // Slots that may exist: n_slots at the scan's start, raised to what the
    // index's blocks hold when a link (to a node inserted since) goes past
    // it. A link beyond even that is corruption.
    uint64 slot_bound_ = 0;
    void check_link(uint32 from, uint32 stored_in, uint32 to);
};

// The vectors of one neighbour selection's candidates, each read from the
// pages once: the heuristic compares pairs of them many times (a VACUUM
// repair or an insert's prune, up to a few thousand comparisons a list), and
// each comparison read and decoded both vectors again. Candidates beyond
// kMaxBytes of vectors (thousands of dimensions and hundreds of candidates)
// are read per comparison, as before.
class NodeVectors {
  public:
    NodeVectors(PageGraph* graph, core::distance::Metric metric, uint32 dims);
    // Forgets the last set and reads the vectors of `ids` (the closest
    // first, when not all fit).
    void load(const std::vector<hn::Candidate>& ids);
    // metric_value between two nodes, and between a vector and a node.
    double pair(uint32 x, uint32 y);
    double from(const float* x, uint32 y);

  private:
    static constexpr std::size_t kMaxBytes = std::size_t{16} << 20;
    const float* find(uint32 id) const;
    PageGraph* graph_;
    core::distance::Metric metric_;
    uint32 dims_;
    // Open addressing, id -> row of data_ (ids kEmpty: a free entry); a
    // selection looks a candidate up twice per comparison.
    static constexpr uint32 kEmpty = 0xFFFFFFFFu;
    std::vector<uint32> keys_, rows_;
    std::vector<float> data_;
    std::vector<float> a_, b_;  // for candidates not loaded
};

// Slots a scan navigates through: live nodes and deleted ones.
inline bool is_graph_node(uint16 flags) { return flags == hn::kNodeLive || flags == hn::kNodeDeleted; }

// Marks in `seen` what a level-0 walk from node `from` reaches, as a scan
// goes: through live and deleted nodes (flags of every slot in `flags`),
// never through a slot that holds no node, not again through a node already
// seen. Raises under guard_pg (call it guarded).
void walk_level0(PageGraph& graph, const std::vector<uint16>& flags, uint32 from, std::vector<uint8>* seen,
                 std::vector<uint32>* scratch);

// libravdb_index_check / libravdb_index_info for lhnsw, as JSON text.
char* check(Relation index);
char* info(Relation index);

// Access method callbacks.
IndexBuildResult* build(Relation heap, Relation index, IndexInfo* info);
void build_empty(Relation index);
bool insert(Relation index, Datum* values, bool* isnull, ItemPointer tid, Relation heap,
            IndexUniqueCheck check_unique, bool index_unchanged, IndexInfo* info);
// Links live node `id` in again at level 0, as an insert links a new node
// (its neighbours found by a search, a WAL-logged link back to it from
// each); VACUUM's cleanup calls it for nodes no search reaches. False when
// no link was added.
bool link_in(Relation index, uint32 id);
IndexBulkDeleteResult* bulk_delete(IndexVacuumInfo* info, IndexBulkDeleteResult* stats,
                                   IndexBulkDeleteCallback callback, void* callback_state);
IndexBulkDeleteResult* vacuum_cleanup(IndexVacuumInfo* info, IndexBulkDeleteResult* stats);
IndexScanDesc begin_scan(Relation index, int nkeys, int norderbys);
void rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys);
bool get_tuple(IndexScanDesc scan, ScanDirection dir);
void end_scan(IndexScanDesc scan);

}  // namespace lrv::pg::lhnsw
