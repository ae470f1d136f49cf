// mosmon's screen as data: a pure function from (snapshot, view, size,
// scroll) to styled text lines, and the key handling that changes the view.
// No curses here (mosmon_tty.cc draws the lines), so tests run without a tty.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "mosix/mosixd/local_proto.h"

namespace mosix::tools {

/// What the bars show.
enum class View { load, speed, memory, guests };
std::string_view view_name(View v);
/// load → speed → memory → guests → load (space and tab).
View next_view(View v);

/// The last answer of the daemon, as mosmon shows it.
struct Snapshot {
  std::vector<mosixd::NodeReport> nodes;  ///< sorted by id; the last good list if `error` is set
  std::string error;                      ///< non-empty: the latest query failed with this
  std::string socket;                     ///< the daemon's socket path, for the status line
};

/// What the user chose.
struct UiState {
  View view = View::load;
  bool help = false;  ///< the help panel replaces the node rows
  int scroll = 0;     ///< index of the first node row shown
};

/// How curses is to draw a segment (colours are mosmon_tty.cc's choice).
enum class Style { normal, title, header, bar, bar_free, dim, error };

struct Segment {
  std::string text;  ///< ASCII only, so length = columns
  Style style = Style::normal;
};

struct Line {
  std::vector<Segment> segments;
  std::string text() const;  ///< the segments' text joined
};

/// Rows between the two header lines and the status line (0 if none fit).
int node_rows(int height);
/// The largest useful scroll for `nodes` nodes on a screen `height` rows tall.
int max_scroll(size_t nodes, int height);

/// The whole screen: exactly `height` lines, none longer than `width`.
/// Line 0 is the title, 1 the column header, then one bar per node (or the
/// help panel), and the status line last. Bars are scaled to the largest
/// value on screen (memory: to the largest node's total; used as '#',
/// free as '-'); '*' after an id marks the answering daemon's own node.
std::vector<Line> render(const Snapshot& snap, const UiState& ui, int width, int height);

/// Keys that are not characters, as mosmon_tty.cc maps curses' codes.
inline constexpr int k_key_up = 0x10001, k_key_down = 0x10002, k_key_page_up = 0x10003, k_key_page_down = 0x10004,
                     k_key_home = 0x10005, k_key_end = 0x10006;

enum class KeyResult { ignored, changed, quit };
/// Applies one key: l s m g pick a view, space/tab cycle, h ? toggle
/// help, arrows j k PgUp PgDn Home End scroll (clamped), q quits.
KeyResult apply_key(UiState& ui, int key, size_t nodes, int height);

/// "512K", "7.8G": binary units, 2–4 significant characters.
std::string format_bytes(uint64_t bytes);

}  // namespace mosix::tools
