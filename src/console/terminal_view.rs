//! A remote terminal session shown as text: the shell's output is parsed into a screen model
//! (`vt100`) and drawn cell by cell into ratatui's buffer, so the remote's escape sequences
//! (titles, clipboard writes, mode changes) never reach the technician's own terminal.
//!
//! Feed it what `agent::terminal::TerminalSession::read` produced; draw it with
//! [`TerminalView::draw`] or as a widget (`frame.render_widget(&view, area)`); turn key presses
//! into bytes for the remote with [`TerminalView::key_bytes`].

use std::borrow::Cow;
use std::num::NonZeroU16;

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Widget;

use crate::agent::terminal::{CursorKeys, key_to_bytes};

/// Lines of history kept above the screen.
pub const SCROLLBACK_LINES: usize = 5000;
/// Longest window title kept from the remote.
const TITLE_LIMIT: usize = 256;

/// What the parser reports besides the screen: only the title is kept, cleaned of controls.
#[derive(Debug, Default)]
struct Events {
    title: String,
}

impl vt100::Callbacks for Events {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.title = String::from_utf8_lossy(title)
            .chars()
            .filter(|c| !c.is_control())
            .take(TITLE_LIMIT)
            .collect();
    }
}

/// The console's copy of a remote terminal's screen.
pub struct TerminalView {
    parser: vt100::Parser<Events>,
}

impl std::fmt::Debug for TerminalView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalView")
            .field("size", &self.size())
            .field("scrollback", &self.scrollback())
            .finish_non_exhaustive()
    }
}

fn non_zero(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

impl TerminalView {
    /// A blank screen of `cols` x `rows` (each at least 1).
    pub fn new(cols: u16, rows: u16) -> Self {
        Self {
            parser: vt100::Parser::new_with_callbacks(
                non_zero(rows),
                non_zero(cols),
                SCROLLBACK_LINES,
                Events::default(),
            ),
        }
    }

    /// Parse output from the remote shell.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
    }

    /// Match the remote terminal's new size (resize the session to the same).
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.parser.set_size(non_zero(rows), non_zero(cols));
    }

    /// (cols, rows).
    pub fn size(&self) -> (u16, u16) {
        let (rows, cols) = self.parser.screen().size();
        (cols.get(), rows.get())
    }

    /// Move the view `lines` up into the history (negative: back down). Clamped.
    pub fn scroll(&mut self, lines: i32) {
        let now = self.scrollback();
        let to = if lines >= 0 {
            now.saturating_add(lines.unsigned_abs() as usize)
        } else {
            now.saturating_sub(lines.unsigned_abs() as usize)
        };
        self.parser.screen_mut().set_scrollback(to);
    }

    /// Back to the live screen (do this when the technician types).
    pub fn scroll_to_bottom(&mut self) {
        self.parser.screen_mut().set_scrollback(0);
    }

    /// How many lines the view is scrolled up; 0 is the live screen.
    pub fn scrollback(&self) -> usize {
        self.parser.screen().scrollback()
    }

    /// The remote's window title, without control characters, for the console's status line.
    pub fn title(&self) -> &str {
        &self.parser.callbacks().title
    }

    /// Whether the remote application asked for application cursor keys.
    pub fn cursor_keys(&self) -> CursorKeys {
        if self.parser.screen().application_cursor() {
            CursorKeys::Application
        } else {
            CursorKeys::Normal
        }
    }

    /// The bytes to send to the remote for a key press, in the remote's current cursor mode.
    pub fn key_bytes(&self, key: &KeyEvent) -> Option<Vec<u8>> {
        key_to_bytes(key, self.cursor_keys())
    }

    /// The bytes to send for pasted text: wrapped in bracketed-paste markers when the remote
    /// asked for them, with any end marker inside the text removed so a paste cannot break out.
    pub fn paste_bytes(&self, text: &str) -> Vec<u8> {
        if !self.parser.screen().bracketed_paste() {
            return text.as_bytes().to_vec();
        }
        let inner = text.replace("\x1b[201~", "");
        let mut out = Vec::with_capacity(inner.len() + 12);
        out.extend_from_slice(b"\x1b[200~");
        out.extend_from_slice(inner.as_bytes());
        out.extend_from_slice(b"\x1b[201~");
        out
    }

    /// The visible text, one line per row, trailing blanks trimmed (for tests and copy).
    pub fn text(&self) -> String {
        let (cols, _) = self.size();
        let rows: Vec<String> = self
            .parser
            .screen()
            .rows(0, cols)
            .map(|r| r.trim_end().to_owned())
            .collect();
        rows.join("\n")
    }

    /// Where the remote's cursor is on screen within `area`, if it is shown and in view
    /// (to place the real cursor with `Frame::set_cursor_position`).
    pub fn cursor(&self, area: Rect) -> Option<Position> {
        let screen = self.parser.screen();
        if screen.hide_cursor() {
            return None;
        }
        let (row, col) = screen.cursor_position();
        let row = usize::from(row).checked_add(screen.scrollback())?;
        let row = u16::try_from(row).ok()?;
        let (_, rows) = self.size();
        if row >= rows.min(area.height) || col >= area.width {
            return None;
        }
        Some(Position::new(area.x + col, area.y + row))
    }

    /// Draw the screen into `area` of `buf`: text, colours, attributes and the cursor (as
    /// reversed video). Cells of `area` beyond the remote screen are cleared.
    pub fn draw(&self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let screen = self.parser.screen();
        for y in 0..area.height {
            for x in 0..area.width {
                let Some(out) = buf.cell_mut((area.x + x, area.y + y)) else {
                    continue;
                };
                out.reset();
                let Some(cell) = screen.cell(y, x) else {
                    continue;
                };
                if cell.is_wide_continuation() {
                    // Drawn by the wide character to its left.
                    continue;
                }
                out.set_style(cell_style(cell));
                let clipped_wide = cell.is_wide() && x + 1 >= area.width;
                if cell.has_contents() && !clipped_wide {
                    out.set_symbol(&safe_symbol(cell.contents()));
                }
            }
        }
        if let Some(pos) = self.cursor(area)
            && let Some(out) = buf.cell_mut(pos)
        {
            out.modifier.toggle(Modifier::REVERSED);
        }
    }
}

impl Widget for &TerminalView {
    fn render(self, area: Rect, buf: &mut Buffer) {
        self.draw(area, buf);
    }
}

fn cell_style(cell: &vt100::Cell) -> Style {
    let mut modifier = Modifier::empty();
    for (on, m) in [
        (cell.bold(), Modifier::BOLD),
        (cell.dim(), Modifier::DIM),
        (cell.italic(), Modifier::ITALIC),
        (cell.underline(), Modifier::UNDERLINED),
        (cell.inverse(), Modifier::REVERSED),
    ] {
        if on {
            modifier |= m;
        }
    }
    Style::new()
        .fg(color(cell.fgcolor()))
        .bg(color(cell.bgcolor()))
        .add_modifier(modifier)
}

fn color(c: vt100::Color) -> Color {
    match c {
        vt100::Color::Default => Color::Reset,
        vt100::Color::Idx(i) => Color::Indexed(i),
        vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

/// A cell's text with control characters removed: the parser prints only printable
/// characters, and this keeps it so whatever the remote sends (C1 controls included).
fn safe_symbol(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    if clean.is_empty() {
        Cow::Borrowed(" ")
    } else {
        Cow::Owned(clean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn render(view: &TerminalView, w: u16, h: u16) -> Buffer {
        let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
        view.draw(buf.area, &mut buf);
        buf
    }

    fn row_text(buf: &Buffer, y: u16) -> String {
        (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_owned())
            .collect::<String>()
    }

    #[test]
    fn draws_text_colours_and_attributes() {
        let mut view = TerminalView::new(10, 3);
        view.feed(b"\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3;48;5;17;4mrgb\x1b[0m\r\nnext");
        let buf = render(&view, 10, 3);
        assert_eq!(row_text(&buf, 0), "red rgb   ");
        assert_eq!(row_text(&buf, 1), "next      ");
        let red = &buf[(0, 0)];
        assert_eq!(red.fg, Color::Indexed(1));
        assert!(red.modifier.contains(Modifier::BOLD));
        let rgb = &buf[(4, 0)];
        assert_eq!(rgb.fg, Color::Rgb(1, 2, 3));
        assert_eq!(rgb.bg, Color::Indexed(17));
        assert!(rgb.modifier.contains(Modifier::UNDERLINED));
        assert_eq!(buf[(3, 0)].fg, Color::Reset);
    }

    #[test]
    fn cursor_is_drawn_reversed_and_hidden_on_request() {
        let mut view = TerminalView::new(10, 3);
        view.feed(b"ab");
        let area = Rect::new(0, 0, 10, 3);
        assert_eq!(view.cursor(area), Some(Position::new(2, 0)));
        let buf = render(&view, 10, 3);
        assert!(buf[(2, 0)].modifier.contains(Modifier::REVERSED));
        assert!(!buf[(1, 0)].modifier.contains(Modifier::REVERSED));
        view.feed(b"\x1b[?25l");
        assert_eq!(view.cursor(area), None);
        let buf = render(&view, 10, 3);
        assert!(!buf[(2, 0)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn wide_characters_take_two_cells_and_are_not_split_at_the_edge() {
        let mut view = TerminalView::new(6, 1);
        view.feed("a日b".as_bytes());
        let buf = render(&view, 6, 1);
        assert_eq!(buf[(1, 0)].symbol(), "日");
        assert_eq!(buf[(3, 0)].symbol(), "b");
        // An area that ends in the middle of the wide character leaves it out.
        let mut narrow = Buffer::empty(Rect::new(0, 0, 2, 1));
        view.draw(narrow.area, &mut narrow);
        assert_eq!(narrow[(1, 0)].symbol(), " ");
    }

    #[test]
    fn scrolls_through_history_and_back() {
        let mut view = TerminalView::new(10, 3);
        for i in 0..20 {
            view.feed(format!("line {i}\r\n").as_bytes());
        }
        assert_eq!(view.text(), "line 18\nline 19\n");
        view.scroll(5);
        assert_eq!(view.scrollback(), 5);
        assert_eq!(view.text(), "line 13\nline 14\nline 15");
        // The cursor is below the view while scrolled up.
        assert_eq!(view.cursor(Rect::new(0, 0, 10, 3)), None);
        view.scroll(-2);
        assert_eq!(view.text(), "line 15\nline 16\nline 17");
        view.scroll(10_000);
        assert_eq!(view.text(), "line 0\nline 1\nline 2");
        view.scroll(-10_000);
        assert_eq!(view.scrollback(), 0);
        view.scroll(3);
        view.scroll_to_bottom();
        assert_eq!(view.scrollback(), 0);
    }

    #[test]
    fn history_is_bounded() {
        let mut view = TerminalView::new(10, 2);
        for i in 0..(SCROLLBACK_LINES + 100) {
            view.feed(format!("{i}\r\n").as_bytes());
        }
        view.scroll(i32::MAX);
        assert_eq!(view.scrollback(), SCROLLBACK_LINES);
    }

    #[test]
    fn resize_changes_the_screen() {
        let mut view = TerminalView::new(80, 24);
        view.resize(100, 30);
        assert_eq!(view.size(), (100, 30));
        view.resize(0, 0);
        assert_eq!(view.size(), (1, 1));
    }

    #[test]
    fn title_is_kept_clean_and_never_drawn() {
        let mut view = TerminalView::new(20, 2);
        view.feed(b"\x1b]0;evil\x07title\x1b\\ok");
        assert_eq!(view.title(), "evil");
        assert_eq!(view.text(), "titleok\n");
        view.feed("\x1b]2;a\u{9b}b\x07".as_bytes());
        assert_eq!(view.title(), "ab");
        assert_eq!(view.text(), "titleok\n");
    }

    #[test]
    fn c1_controls_in_output_never_reach_the_buffer() {
        let mut view = TerminalView::new(20, 2);
        view.feed("x\u{9b}31my\u{9d}0;t\u{9c}z".as_bytes());
        let buf = render(&view, 20, 2);
        for cell in &buf.content {
            assert!(
                !cell.symbol().chars().any(char::is_control),
                "{:?}",
                cell.symbol()
            );
        }
    }

    #[test]
    fn keys_follow_the_remote_cursor_mode() {
        let mut view = TerminalView::new(10, 2);
        let up = KeyEvent::new(KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(view.key_bytes(&up), Some(b"\x1b[A".to_vec()));
        view.feed(b"\x1b[?1h");
        assert_eq!(view.key_bytes(&up), Some(b"\x1bOA".to_vec()));
    }

    #[test]
    fn pastes_are_bracketed_when_asked_and_cannot_break_out() {
        let mut view = TerminalView::new(10, 2);
        assert_eq!(view.paste_bytes("ls\n"), b"ls\n".to_vec());
        view.feed(b"\x1b[?2004h");
        assert_eq!(
            view.paste_bytes("a\x1b[201~rm -rf ~\n"),
            b"\x1b[200~arm -rf ~\n\x1b[201~".to_vec()
        );
    }
}
