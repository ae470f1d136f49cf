// The curses side of mosmon (the only file that includes ncurses): draws
// render()'s lines, maps keys, follows resizes, refetches every interval.
#include "mosix/tools/mosmon_tty.h"

#include <curses.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <clocale>

#include "common/result.h"

namespace mosix::tools {
namespace {

std::atomic<bool> g_stop = false;  // set by SIGINT/SIGTERM; read by the loop

void on_signal(int) { g_stop = true; }

// Colour pair per Style (0 = the terminal's default).
short pair_of(Style s) {
  switch (s) {
    case Style::title:
      return 1;
    case Style::bar:
      return 2;
    case Style::bar_free:
      return 3;
    case Style::error:
      return 4;
    default:
      return 0;
  }
}

attr_t attrs_of(Style s) {
  attr_t a = has_colors() ? COLOR_PAIR(pair_of(s)) : 0;
  if (s == Style::title || s == Style::header) a |= A_BOLD;
  if (s == Style::title && !has_colors()) a |= A_REVERSE;
  if (s == Style::dim) a |= A_DIM;
  return a;
}

int map_key(int ch) {
  switch (ch) {
    case KEY_UP:
      return k_key_up;
    case KEY_DOWN:
      return k_key_down;
    case KEY_PPAGE:
      return k_key_page_up;
    case KEY_NPAGE:
      return k_key_page_down;
    case KEY_HOME:
      return k_key_home;
    case KEY_END:
      return k_key_end;
    default:
      return ch;
  }
}

void draw(const Snapshot& snap, const UiState& ui) {
  int height = LINES, width = COLS;
  erase();
  auto lines = render(snap, ui, width, height);
  for (int y = 0; y < static_cast<int>(lines.size()); ++y) {
    move(y, 0);
    int x = 0;
    for (const auto& seg : lines[y].segments) {
      // The bottom-right cell would scroll the screen: leave it empty.
      int room = width - x - (y == height - 1 ? 1 : 0);
      if (room <= 0) break;
      attrset(attrs_of(seg.style));
      addnstr(seg.text.c_str(), std::min(room, static_cast<int>(seg.text.size())));
      x += std::min(room, static_cast<int>(seg.text.size()));
    }
  }
  attrset(A_NORMAL);
  refresh();
}

// Restores the terminal however run_monitor leaves.
struct CursesSession {
  CursesSession() {
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    if (has_colors()) {
      start_color();
      use_default_colors();
      init_pair(1, COLOR_BLACK, COLOR_CYAN);
      init_pair(2, COLOR_GREEN, -1);
      init_pair(3, COLOR_BLUE, -1);
      init_pair(4, COLOR_RED, -1);
    }
  }
  ~CursesSession() { endwin(); }
};

}  // namespace

int run_monitor(const MosmonOptions& o) {
  if (!::isatty(STDIN_FILENO) || !::isatty(STDOUT_FILENO))
    throw mrc::Fatal("not a terminal (use mosmon --json for a one-shot snapshot)");
  std::setlocale(LC_ALL, "");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  CursesSession session;
  UiState ui{o.view, false, 0};
  Snapshot snap;
  snap.socket = o.socket;
  using clock = std::chrono::steady_clock;
  auto next_fetch = clock::now();
  while (!g_stop) {
    if (clock::now() >= next_fetch) {
      snap = fetch_snapshot(o, snap);
      next_fetch = clock::now() + o.interval;
      ui.scroll = std::min(ui.scroll, max_scroll(snap.nodes.size(), LINES));
      draw(snap, ui);
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_fetch - clock::now()).count();
    timeout(static_cast<int>(std::clamp<long long>(wait, 0, 1000)));
    int ch = getch();
    if (ch == ERR) continue;  // timeout or a signal
    if (ch == KEY_RESIZE) {
      ui.scroll = std::min(ui.scroll, max_scroll(snap.nodes.size(), LINES));
      draw(snap, ui);
      continue;
    }
    KeyResult r = apply_key(ui, map_key(ch), snap.nodes.size(), LINES);
    if (r == KeyResult::quit) break;
    if (r == KeyResult::changed) draw(snap, ui);
  }
  return 0;
}

}  // namespace mosix::tools
