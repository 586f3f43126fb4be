// Package segment owns the segment file: the immutable, self-describing,
// compressed and tamper-evident file a sealed partition (tenant, month) is
// written to. A segment holds the partition's entries (one opaque byte string
// per leaf index, or a marker where retention pruned the payload) and its hash
// tiles (opaque byte strings keyed by merkle.TileID). It is the unit of cold
// storage and backup, so everything needed to read it is in the file itself.
//
// The package knows nothing about what entries and tiles mean: it neither
// hashes leaves nor checks the header's root against the tiles. The engine
// does that after writing (and may do it again at any time) by rehashing the
// entries read back through Scan. What this package guarantees is that the
// bytes it hands out are the bytes that were written: the whole file is
// covered by a trailing SHA-256 checked by Open and Verify, every block read
// after Open is checked by its zstd content checksum, and every tile read is
// checked by its CRC-32C.
//
// A Writer writes to a temporary file beside the destination and renames it
// into place only once the file is complete and synced, so a reader never
// sees a partial segment under the final name. Temporary files are named
// "<base>.tmp-<random>"; one left behind by a crash is garbage and may be
// deleted.
//
// A Reader keeps only the header and the footer index in memory (O(blocks +
// tiles)), reads blocks and tiles with ReadAt on demand, and keeps a small,
// byte-bounded cache of decoded blocks. It is safe for concurrent use.
//
// # File format, version 1
//
// All integers are unsigned and big-endian. Offsets are absolute byte offsets
// from the start of the file. "uvarint" is the unsigned LEB128 varint of
// encoding/binary (at most 10 bytes). The file is:
//
//	file = preamble header data footer footer_length trailer_hash
//
// Preamble (12 bytes):
//
//	magic   [8]  89 54 53 47 0D 0A 1A 0A   ("\x89TSG\r\n\x1a\n")
//	version u32  1
//
// The magic, like PNG's, starts with a non-ASCII byte and contains CR LF, SUB
// and LF, so a file mangled by a 7-bit or text-mode transfer is recognised as
// such rather than misparsed.
//
// Header (immediately after the preamble, 49 to 303 bytes):
//
//	tenant_len u8     1..255
//	tenant     [tenant_len] bytes
//	partition  [7]    ASCII "YYYY-MM", month 01..12
//	size       u64    number of leaves in the partition
//	root       [32]   Merkle root of the partition (stored, not checked here)
//
// Data region: from the end of the header (data_start) to the start of the
// footer (data_end). It is exactly the concatenation of every entry block
// and every tile, with no gap and no overlap; each is found only through the
// footer. This writer emits a block when it fills or takes the last leaf,
// and a tile when it is added, so with the usual call order (all entries,
// then all tiles) the region is the blocks in leaf order followed by the
// tiles in the order they were added. Readers must not assume that order beyond what the footer
// constraints below state.
//
// Entry block: one zstd frame (RFC 8878). The writer sets the frame content
// checksum; readers verify it when present. The decompressed block payload
// is raw_length bytes holding entry_count consecutive leaves, starting at
// first_leaf, each as:
//
//	tag     uvarint   0: pruned, no payload follows
//	                  n >= 1: present, n-1 payload bytes follow (n-1 <= MaxEntrySize = 16 MiB)
//	payload [tag-1]
//
// so an empty entry (tag 1) and a pruned one (tag 0) stay distinct. The
// entries must fill the payload exactly. A block holds at least one entry;
// the writer closes a block before an entry would take it past the target
// block size, so only a block holding a single entry larger than the target
// exceeds it.
//
// Tile: the tile bytes as given to AddTile, uncompressed (tiles are hashes
// and do not compress), 1..MaxTileSize (1 MiB) bytes.
//
// Footer (at footer_start = file_size - 40 - footer_length):
//
//	block_count u64
//	tile_count  u64
//	block_count block records, 28 bytes each, in leaf order:
//	    first_leaf  u64   0 for the first block, else previous first_leaf + previous entry_count
//	    offset      u64   strictly greater than the previous block's offset
//	    length      u32   compressed length, 1..raw_length + raw_length/128 + 1024
//	    raw_length  u32   payload length, entry_count..16 MiB + 10
//	    entry_count u32   >= 1
//	tile_count tile records, 25 bytes each, sorted by (level, index), no duplicates:
//	    level  u8
//	    index  u64
//	    offset u64
//	    length u32   1..1 MiB
//	    crc32c u32   CRC-32C (Castagnoli) of the tile bytes
//
// Trailer (last 40 bytes):
//
//	footer_length u64   = 16 + 28*block_count + 25*tile_count
//	trailer_hash  [32]  SHA-256 of every preceding byte of the file
//
// The entry counts sum to size, and block_count is 0 exactly when size is 0.
// Every block and tile lies inside the data region, and together they cover
// it exactly.
//
// Compatibility: every version keeps the preamble at offset 0 and the
// trailing SHA-256 over all preceding bytes as its last 32 bytes, so the
// integrity of a file of any version can be checked before it is
// interpreted. Any other change to the layout increments the version; a
// reader rejects versions it does not know.
//
// # Determinism
//
// The zstd encoder runs with concurrency 1 and no timestamps or random values
// enter the file, so the same header, options and sequence of calls always
// produce the same bytes.
package segment
