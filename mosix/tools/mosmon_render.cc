// mosmon's layout: title, column header, one bar per node or the help
// panel, status line; columns shrink on narrow terminals.
#include "mosix/tools/mosmon_render.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace mosix::tools {
namespace {

using mosixd::NodeReport;

constexpr int k_min_width = 16;   // below this not even "id [bar]" fits
constexpr int k_min_bar = 6;      // narrower bars say nothing; drop columns first
constexpr int k_chrome_rows = 3;  // title, column header, status line

std::string pad_left(const std::string& s, size_t w) { return s.size() >= w ? s : std::string(w - s.size(), ' ') + s; }
std::string pad_right(const std::string& s, size_t w) { return s.size() >= w ? s : s + std::string(w - s.size(), ' '); }

std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// The number a node's bar and value show in view `v` (memory: used bytes).
double metric(const NodeReport& n, View v) {
  switch (v) {
    case View::load:
      return n.res.load / 100.0;
    case View::speed:
      return n.res.speed;
    case View::memory:
      return static_cast<double>(n.res.mem_total - std::min(n.res.mem_free, n.res.mem_total));
    case View::guests:
      return n.res.guests;
  }
  return 0;
}

std::string value_text(const NodeReport& n, View v) {
  switch (v) {
    case View::load:
      return fixed2(n.res.load / 100.0);
    case View::speed:
      return std::to_string(n.res.speed);
    case View::memory:
      return format_bytes(n.res.mem_free) + " free/" + format_bytes(n.res.mem_total);
    case View::guests:
      return std::to_string(n.res.guests) + (n.res.accepting ? "" : " closed");
  }
  return "";
}

// What a full bar stands for: the largest value shown; for load rounded up
// to a whole number, at least 1, so bars keep their length from one update
// to the next and an idle cluster does not draw full bars; for memory the
// largest node's total.
double full_scale(const std::vector<NodeReport>& nodes, View v) {
  double m = v == View::load || v == View::guests ? 1.0 : 0.0;
  for (const auto& n : nodes) m = std::max(m, v == View::memory ? static_cast<double>(n.res.mem_total) : metric(n, v));
  if (v == View::load) m = std::ceil(m);
  return m > 0 ? m : 1.0;
}

std::string scale_text(double scale, View v) {
  switch (v) {
    case View::load:
      return "full = " + fixed2(scale);
    case View::speed:
      return "full = " + std::to_string(static_cast<uint64_t>(scale));
    case View::memory:
      return "# used  - free, full = " + format_bytes(static_cast<uint64_t>(scale));
    case View::guests:
      return "full = " + std::to_string(static_cast<uint64_t>(scale));
  }
  return "";
}

// Texts from outside (error messages, paths) made ASCII, so that bytes are
// columns: an em dash becomes '-', anything else non-ASCII '?'.
std::string ascii(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += c >= 0x20 ? static_cast<char>(c) : ' ';
      continue;
    }
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    out += s.substr(i, 3) == "\xE2\x80\x94" ? '-' : '?';
    i += std::min(len, s.size() - i) - 1;
  }
  return out;
}

int cells(double value, double scale, int width) {
  return std::clamp(static_cast<int>(std::lround(value / scale * width)), 0, width);
}

struct Columns {
  size_t id_w = 4, clu_w = 3, value_w = 0;
  bool cluster = true, value = true;
  int bar_w = 0;
};

Columns layout(const std::vector<NodeReport>& nodes, View v, int width) {
  Columns c;
  c.value_w = view_name(v).size();
  for (const auto& n : nodes) {
    c.id_w = std::max(c.id_w, std::to_string(n.id).size());
    c.clu_w = std::max(c.clu_w, std::to_string(n.cluster).size());
    c.value_w = std::max(c.value_w, value_text(n, v).size());
  }
  // " ID* CLU [bar] VALUE": drop the cluster, then the value, before the bar gets too thin.
  auto bar_for = [&] {
    return width - static_cast<int>(1 + c.id_w + 2 + (c.cluster ? c.clu_w + 1 : 0) + 2 + (c.value ? 1 + c.value_w : 0));
  };
  if (bar_for() < k_min_bar) c.cluster = false;
  if (bar_for() < k_min_bar) c.value = false;
  c.bar_w = std::max(bar_for(), 1);
  return c;
}

Line clipped(Line l, int width) {
  Line out;
  size_t left = static_cast<size_t>(std::max(width, 0));
  for (auto& s : l.segments) {
    if (left == 0) break;
    if (s.text.size() > left) s.text.resize(left);
    left -= s.text.size();
    out.segments.push_back(std::move(s));
  }
  return out;
}

Line node_line(const NodeReport& n, const Columns& c, View v, double scale) {
  Line l;
  std::string lead = " " + pad_left(std::to_string(n.id), c.id_w) + (n.self ? "* " : "  ");
  if (c.cluster) lead += pad_left(std::to_string(n.cluster), c.clu_w) + " ";
  l.segments.push_back({lead + "[", Style::normal});
  if (v == View::memory) {
    int total = cells(static_cast<double>(n.res.mem_total), scale, c.bar_w);
    int used = std::min(cells(metric(n, v), scale, c.bar_w), total);
    l.segments.push_back({std::string(used, '#'), Style::bar});
    l.segments.push_back({std::string(total - used, '-'), Style::bar_free});
    l.segments.push_back({std::string(c.bar_w - total, ' '), Style::normal});
  } else {
    int fill = cells(metric(n, v), scale, c.bar_w);
    l.segments.push_back({std::string(fill, '#'), Style::bar});
    l.segments.push_back({std::string(c.bar_w - fill, ' '), Style::normal});
  }
  l.segments.push_back({"]", Style::normal});
  if (c.value) l.segments.push_back({" " + pad_left(value_text(n, v), c.value_w), Style::normal});
  return l;
}

Line header_line(const Columns& c, View v, double scale) {
  std::string lead = " " + pad_left("NODE", c.id_w) + "  " + (c.cluster ? pad_left("CLU", c.clu_w) + " " : "");
  std::string bar = " " + std::string(view_name(v)) + " (" + scale_text(scale, v) + ")";
  std::string text = lead + pad_right(bar, static_cast<size_t>(c.bar_w) + 2).substr(0, c.bar_w + 2);
  if (c.value) {
    std::string label = v == View::memory ? "MEMORY" : std::string(view_name(v));
    for (auto& ch : label) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    text += " " + pad_left(label, c.value_w);
  }
  return Line{{{text, Style::header}}};
}

const char* const k_help[] = {
    " Keys",
    "   l  load     s  speed     m  memory     g  guests",
    "   space, tab   next view",
    "   up/down, j/k   scroll a row     PgUp/PgDn   a page     Home/End",
    "   h, ?   this help (again to close)     q   quit",
    "",
    " Views",
    "   load    run queue per CPU on standard CPUs, smoothed (1.00 = one busy standard CPU)",
    "   speed   per-CPU speed (10000 = the MOSIX standard CPU)",
    "   memory  used (#) and free (-) memory; bars scaled to the largest node",
    "   guests  processes from other nodes running here (closed = not accepting)",
    "",
    " A '*' after a node id marks the node whose mosixd answers.",
};

}  // namespace

std::string_view view_name(View v) {
  switch (v) {
    case View::load:
      return "load";
    case View::speed:
      return "speed";
    case View::memory:
      return "memory";
    case View::guests:
      return "guests";
  }
  return "?";
}

View next_view(View v) {
  switch (v) {
    case View::load:
      return View::speed;
    case View::speed:
      return View::memory;
    case View::memory:
      return View::guests;
    case View::guests:
      return View::load;
  }
  return View::load;
}

std::string Line::text() const {
  std::string out;
  for (const auto& s : segments) out += s.text;
  return out;
}

int node_rows(int height) { return std::max(height - k_chrome_rows, 0); }

int max_scroll(size_t nodes, int height) { return std::max(static_cast<int>(nodes) - node_rows(height), 0); }

std::string format_bytes(uint64_t bytes) {
  static const char k_units[] = "BKMGTPE";
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0 || v >= 10)
    std::snprintf(buf, sizeof buf, "%.0f%c", v, k_units[u]);
  else
    std::snprintf(buf, sizeof buf, "%.1f%c", v, k_units[u]);
  return buf;
}

std::vector<Line> render(const Snapshot& snap, const UiState& ui, int width, int height) {
  std::vector<Line> out;
  if (height <= 0) return out;
  if (width < k_min_width) {
    out.push_back(clipped(Line{{{width >= 18 ? "mosmon: too narrow" : "too narrow", Style::error}}}, width));
    out.resize(static_cast<size_t>(height));
    return out;
  }
  const View v = ui.view;
  const Columns cols = layout(snap.nodes, v, width);
  const double scale = full_scale(snap.nodes, v);
  const int rows = node_rows(height);
  const int first = std::clamp(ui.scroll, 0, max_scroll(snap.nodes.size(), height));

  std::string title = " mosmon: " + std::string(view_name(v)) + "   " + std::to_string(snap.nodes.size()) +
                      (snap.nodes.size() == 1 ? " node" : " nodes") + (snap.error.empty() ? "" : " (stale)");
  std::string keys = "l s m g: view  space: next  h: help  q: quit ";
  Line t{{{title, Style::title}}};
  if (static_cast<int>(title.size() + keys.size()) + 2 <= width)
    t.segments.push_back({std::string(width - title.size() - keys.size(), ' ') + keys, Style::title});
  else
    t.segments.push_back({std::string(width - std::min<size_t>(title.size(), width), ' '), Style::title});
  out.push_back(clipped(std::move(t), width));
  if (height == 1) return out;

  if (ui.help) {
    out.push_back(Line{{{" help", Style::header}}});
    for (int i = 0; i < rows; ++i)
      out.push_back(i < static_cast<int>(std::size(k_help)) ? clipped(Line{{{k_help[i], Style::normal}}}, width)
                                                            : Line{});
  } else {
    out.push_back(clipped(header_line(cols, v, scale), width));
    for (int i = 0; i < rows; ++i) {
      size_t idx = static_cast<size_t>(first + i);
      if (idx < snap.nodes.size())
        out.push_back(clipped(node_line(snap.nodes[idx], cols, v, scale), width));
      else if (i == 0 && snap.nodes.empty())
        out.push_back(Line{{{snap.error.empty() ? " (no nodes yet)" : " (no data)", Style::dim}}});
      else
        out.push_back(Line{});
    }
  }

  if (static_cast<int>(out.size()) < height) {
    Line status;
    if (!snap.error.empty()) {
      status.segments.push_back({" " + ascii(snap.error) + " (retrying)", Style::error});
    } else if (!ui.help && max_scroll(snap.nodes.size(), height) > 0) {
      int last = std::min(first + rows, static_cast<int>(snap.nodes.size()));
      status.segments.push_back({" nodes " + std::to_string(first + 1) + "-" + std::to_string(last) + " of " +
                                     std::to_string(snap.nodes.size()) + "   up/down PgUp/PgDn: scroll",
                                 Style::dim});
    } else {
      status.segments.push_back({" * = this node   " + ascii(snap.socket), Style::dim});
    }
    out.push_back(clipped(std::move(status), width));
  }
  out.resize(static_cast<size_t>(height));
  return out;
}

KeyResult apply_key(UiState& ui, int key, size_t nodes, int height) {
  const int page = std::max(node_rows(height) - 1, 1);
  const int last = max_scroll(nodes, height);
  int scroll = std::clamp(ui.scroll, 0, last);
  switch (key) {
    case 'q':
    case 'Q':
      return KeyResult::quit;
    case 'l':
      ui.view = View::load;
      return KeyResult::changed;
    case 's':
      ui.view = View::speed;
      return KeyResult::changed;
    case 'm':
      ui.view = View::memory;
      return KeyResult::changed;
    case 'g':
      ui.view = View::guests;
      return KeyResult::changed;
    case ' ':
    case '\t':
      ui.view = next_view(ui.view);
      return KeyResult::changed;
    case 'h':
    case '?':
      ui.help = !ui.help;
      return KeyResult::changed;
    case k_key_up:
    case 'k':
      scroll -= 1;
      break;
    case k_key_down:
    case 'j':
      scroll += 1;
      break;
    case k_key_page_up:
      scroll -= page;
      break;
    case k_key_page_down:
      scroll += page;
      break;
    case k_key_home:
      scroll = 0;
      break;
    case k_key_end:
      scroll = last;
      break;
    default:
      return KeyResult::ignored;
  }
  ui.scroll = std::clamp(scroll, 0, last);
  return KeyResult::changed;
}

}  // namespace mosix::tools
