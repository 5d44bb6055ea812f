//! Recursive-descent parser for Go templates, following `text/template/parse/parse.go`:
//! pipelines with declarations, `if`/`else if`/`range`/`with`/`break`/`continue`,
//! `define`/`template`/`block`, parse-time checks for undefined variables and functions, and Go's
//! error texts (`template: :LINE: MESSAGE`, the template name being empty as in Argo).

use std::collections::HashMap;

use super::ast::{Arg, Branch, Cmd, ListNode, Node, Number, Pipe, Program, TemplateCall};
use super::budget::MAX_PARSE_DEPTH;
use super::lex::{Item, Tok, lex};
use super::strconv::{parse_int_literal, quote};
use crate::funcs;
use crate::mode::Library;

type PResult<T> = Result<T, String>;

/// What ended an item list.
enum End {
    End,
    Else,
}

enum Parsed {
    Node(Node),
    End,
    Else,
}

struct Parser<'s> {
    src: &'s str,
    items: Vec<Item<'s>>,
    next: usize,
    furthest: usize,
    vars: Vec<Box<str>>,
    range_depth: usize,
    depth: usize,
    defs: HashMap<String, ListNode>,
    library: Library,
}

pub(crate) fn parse(src: &str, library: Library) -> PResult<Program> {
    let mut p = Parser {
        src,
        items: lex(src),
        next: 0,
        furthest: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        defs: HashMap::new(),
        library,
    };
    let mut root = ListNode::default();
    while p.peek().typ != Tok::Eof {
        if p.peek().typ == Tok::LeftDelim {
            let save = p.next;
            p.next_item();
            if p.next_non_space().typ == Tok::Define {
                p.parse_definition()?;
                continue;
            }
            p.next = save;
        }
        match p.text_or_action()? {
            Parsed::Node(n) => root.nodes.push(n),
            Parsed::End => return Err(p.errorf("unexpected {{end}}")),
            Parsed::Else => return Err(p.errorf("unexpected {{else}}")),
        }
    }
    Ok(Program { root, defs: p.defs })
}

fn is_empty_list(list: &ListNode) -> bool {
    list.nodes
        .iter()
        .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
}

impl<'s> Parser<'s> {
    fn item(&self, i: usize) -> Item<'s> {
        match self.items.get(i).or(self.items.last()) {
            Some(it) => it.clone(),
            None => Item {
                typ: Tok::Eof,
                pos: self.src.len(),
                val: "".into(),
            },
        }
    }

    fn next_item(&mut self) -> Item<'s> {
        let it = self.item(self.next);
        if self.next < self.items.len() {
            self.next += 1;
        }
        self.furthest = self.furthest.max(self.next);
        it
    }

    fn backup(&mut self) {
        self.next = self.next.saturating_sub(1);
    }

    fn peek(&mut self) -> Item<'s> {
        let it = self.next_item();
        self.backup();
        it
    }

    fn next_non_space(&mut self) -> Item<'s> {
        loop {
            let it = self.next_item();
            if it.typ != Tok::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item<'s> {
        let it = self.next_non_space();
        self.backup();
        it
    }

    /// Go's `errorf`: the line is that of the furthest token read.
    fn errorf(&self, msg: &str) -> String {
        let pos = self.item(self.furthest.saturating_sub(1)).pos;
        let line = 1 + self.src[..pos.min(self.src.len())].matches('\n').count();
        format!("template: :{line}: {msg}")
    }

    fn unexpected(&self, item: &Item<'_>, context: &str) -> String {
        if item.typ == Tok::Error {
            return self.errorf(&item.val);
        }
        self.errorf(&format!("unexpected {item} in {context}"))
    }

    fn expect(&mut self, typ: Tok, context: &str) -> PResult<Item<'s>> {
        let it = self.next_non_space();
        if it.typ != typ {
            return Err(self.unexpected(&it, context));
        }
        Ok(it)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(self.errorf(&format!(
                "template nesting exceeds the limit of {MAX_PARSE_DEPTH}"
            )));
        }
        Ok(())
    }

    fn add_definition(&mut self, name: String, list: ListNode) -> PResult<()> {
        match self.defs.get(&name) {
            Some(existing) if !is_empty_list(existing) && !is_empty_list(&list) => Err(self
                .errorf(&format!(
                    "template: multiple definition of template {}",
                    quote(&name)
                ))),
            Some(_) if is_empty_list(&list) => Ok(()),
            _ => {
                self.defs.insert(name, list);
                Ok(())
            }
        }
    }

    /// Parses a template body with a fresh variable scope, as Go does for `define` and `block`.
    fn definition_body(&mut self, context: &str) -> PResult<ListNode> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        if let End::Else = end {
            return Err(self.errorf(&format!("unexpected {{{{else}}}} in {context}")));
        }
        self.vars = vars;
        self.range_depth = range_depth;
        Ok(list)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let name_item = self.next_non_space();
        if !matches!(name_item.typ, Tok::Str | Tok::RawStr) {
            return Err(self.unexpected(&name_item, CONTEXT));
        }
        let name = unquote(&name_item.val).map_err(|e| self.errorf(&e))?;
        self.expect(Tok::RightDelim, CONTEXT)?;
        let list = self.definition_body(CONTEXT)?;
        self.add_definition(name, list)
    }

    fn item_list(&mut self) -> PResult<(ListNode, End)> {
        let mut list = ListNode::default();
        while self.peek_non_space().typ != Tok::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.nodes.push(n),
                Parsed::End => return Ok((list, End::End)),
                Parsed::Else => return Ok((list, End::Else)),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let it = self.next_non_space();
        match it.typ {
            Tok::Text => Ok(Parsed::Node(Node::Text(it.val.as_ref().into()))),
            Tok::LeftDelim => self.action(),
            _ => Err(self.unexpected(&it, "input")),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let it = self.next_non_space();
        Ok(Parsed::Node(match it.typ {
            Tok::Block => self.block_control()?,
            Tok::Break | Tok::Continue => self.loop_control(it.typ)?,
            Tok::Else => return self.else_control(),
            Tok::End => {
                self.expect(Tok::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            Tok::If => Node::If(Box::new(self.parse_control("if")?)),
            Tok::Range => Node::Range(Box::new(self.parse_control("range")?)),
            Tok::With => Node::With(Box::new(self.parse_control("with")?)),
            Tok::Template => self.template_control()?,
            _ => {
                self.backup();
                Node::Action(self.pipeline("command", Tok::RightDelim)?)
            }
        }))
    }

    fn loop_control(&mut self, typ: Tok) -> PResult<Node> {
        let (name, node) = if typ == Tok::Break {
            ("{{break}}", Node::Break)
        } else {
            ("{{continue}}", Node::Continue)
        };
        let it = self.next_non_space();
        if it.typ != Tok::RightDelim {
            return Err(self.unexpected(&it, name));
        }
        if self.range_depth == 0 {
            return Err(self.errorf(&format!("{name} outside {{{{range}}}}")));
        }
        Ok(node)
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        // `{{else if ...}}` and `{{else with ...}}` leave the keyword for the enclosing control.
        let peek = self.peek_non_space();
        if !matches!(peek.typ, Tok::If | Tok::With) {
            self.expect(Tok::RightDelim, "else")?;
        }
        Ok(Parsed::Else)
    }

    fn parse_control(&mut self, context: &str) -> PResult<Branch> {
        self.enter()?;
        let vars = self.vars.len();
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            End::End => None,
            End::Else => {
                let chained = match (context, self.peek().typ) {
                    ("if", Tok::If) => Some(("if", Tok::If)),
                    ("with", Tok::With) => Some(("with", Tok::With)),
                    _ => None,
                };
                if let Some((ctx, _)) = chained {
                    self.next_item();
                    let branch = self.parse_control(ctx)?;
                    let node = if ctx == "if" {
                        Node::If(Box::new(branch))
                    } else {
                        Node::With(Box::new(branch))
                    };
                    Some(ListNode { nodes: vec![node] })
                } else {
                    let (list, end) = self.item_list()?;
                    if let End::Else = end {
                        return Err(self.errorf("expected end; found {{else}}"));
                    }
                    Some(list)
                }
            }
        };
        self.vars.truncate(vars);
        self.depth -= 1;
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&self, it: &Item<'_>, context: &str) -> PResult<String> {
        match it.typ {
            Tok::Str | Tok::RawStr => unquote(&it.val).map_err(|e| self.errorf(&e)),
            _ => Err(self.unexpected(it, context)),
        }
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let it = self.next_non_space();
        let name = self.template_name(&it, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, Tok::RightDelim)?;
        self.enter()?;
        let list = self.definition_body(CONTEXT)?;
        self.depth -= 1;
        self.add_definition(name.clone(), list)?;
        Ok(Node::Template(Box::new(TemplateCall {
            pos: it.pos,
            name: name.into(),
            pipe: Some(pipe),
        })))
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let it = self.next_non_space();
        let name = self.template_name(&it, CONTEXT)?;
        let pipe = if self.next_non_space().typ == Tok::RightDelim {
            None
        } else {
            self.backup();
            Some(self.pipeline(CONTEXT, Tok::RightDelim)?)
        };
        Ok(Node::Template(Box::new(TemplateCall {
            pos: it.pos,
            name: name.into(),
            pipe,
        })))
    }

    fn pipeline(&mut self, context: &str, end: Tok) -> PResult<Pipe> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, `$i, $e :=` (range only).
        loop {
            let v = self.peek_non_space();
            if v.typ != Tok::Variable {
                break;
            }
            let save = self.next;
            self.next_item();
            let next = self.peek_non_space();
            match next.typ {
                Tok::Assign | Tok::Declare => {
                    pipe.is_assign = next.typ == Tok::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.as_ref().into());
                    self.vars.push(v.val.as_ref().into());
                }
                Tok::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.as_ref().into());
                    self.vars.push(v.val.as_ref().into());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().typ {
                            Tok::Variable | Tok::RightDelim | Tok::RightParen => continue,
                            _ => return Err(self.errorf("range can only initialize variables")),
                        }
                    }
                    return Err(self.errorf(&format!("too many declarations in {context}")));
                }
                _ => self.next = save,
            }
            break;
        }
        loop {
            let it = self.next_non_space();
            if it.typ == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match it.typ {
                Tok::Bool
                | Tok::CharConst
                | Tok::Complex
                | Tok::Dot
                | Tok::Field
                | Tok::Identifier
                | Tok::Number
                | Tok::Nil
                | Tok::RawStr
                | Tok::Str
                | Tok::Variable
                | Tok::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&it, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.errorf(&format!("missing value for {context}")));
        }
        for (i, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                cmd.args.first(),
                Some(Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::Str { .. })
            ) {
                return Err(self.errorf(&format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                )));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Cmd> {
        let mut cmd = Cmd {
            pos: self.peek_non_space().pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let it = self.next_item();
            match it.typ {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&it, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ != Tok::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut more: Vec<Box<str>> = Vec::new();
        while self.peek().typ == Tok::Field {
            let it = self.next_item();
            more.push(it.val.get(1..).unwrap_or("").into());
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(more);
                Arg::Field { pos, idents }
            }
            Arg::Variable {
                name, mut fields, ..
            } => {
                fields.extend(more);
                Arg::Variable { pos, name, fields }
            }
            Arg::Bool(..) | Arg::Str { .. } | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                return Err(self.errorf(&format!(
                    "unexpected . after term {}",
                    quote(&node.to_string())
                )));
            }
            other => Arg::Chain {
                pos,
                node: Box::new(other),
                fields: more,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let it = self.next_non_space();
        let pos = it.pos;
        Ok(Some(match it.typ {
            Tok::Identifier => match funcs::lookup(&it.val, self.library) {
                Some(func) => Arg::Func { pos, func },
                None => {
                    return Err(self.errorf(&format!("function {} not defined", quote(&it.val))));
                }
            },
            Tok::Dot => Arg::Dot(pos),
            Tok::Nil => Arg::Nil(pos),
            Tok::Variable => {
                if !self.vars.iter().any(|v| **v == *it.val) {
                    return Err(self.errorf(&format!("undefined variable {}", quote(&it.val))));
                }
                Arg::Variable {
                    pos,
                    name: it.val.as_ref().into(),
                    fields: Vec::new(),
                }
            }
            Tok::Field => Arg::Field {
                pos,
                idents: vec![it.val.get(1..).unwrap_or("").into()],
            },
            Tok::Bool => Arg::Bool(pos, it.val == "true"),
            Tok::CharConst | Tok::Number | Tok::Complex => {
                let n = number(&it.val, it.typ).map_err(|e| self.errorf(&e))?;
                Arg::Number(pos, Box::new(n))
            }
            Tok::LeftParen => {
                self.enter()?;
                let p = self.pipeline("parenthesized pipeline", Tok::RightParen)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(p))
            }
            Tok::Str | Tok::RawStr => {
                let text = unquote(&it.val).map_err(|e| self.errorf(&e))?;
                Arg::Str {
                    pos,
                    quoted: it.val.as_ref().into(),
                    text: text.into(),
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

/// Go's `strconv.Unquote` for the three literal forms a template can contain.
pub(crate) fn unquote(s: &str) -> Result<String, String> {
    const SYNTAX: &str = "invalid syntax";
    if let Some(raw) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        return Ok(raw.replace('\r', ""));
    }
    let quote_char = match s.chars().next() {
        Some(c @ ('"' | '\'')) if s.len() >= 2 && s.ends_with(c) => c,
        _ => return Err(SYNTAX.to_string()),
    };
    let inner = &s[1..s.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote_char || c == '\n' {
            return Err(SYNTAX.to_string());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let esc = chars.next().ok_or(SYNTAX)?;
        let decoded = match esc {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\\' => '\\',
            '\'' if quote_char == '\'' => '\'',
            '"' if quote_char == '"' => '"',
            'x' | 'u' | 'U' => {
                let n = match esc {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| chars.next()).collect();
                let v = u32::from_str_radix(&hex, 16).map_err(|_| SYNTAX.to_string())?;
                if hex.len() != n {
                    return Err(SYNTAX.to_string());
                }
                // A `\xNN` escape is a raw byte in Go; bytes above ASCII cannot stand alone in a
                // Rust string and become U+FFFD.
                if esc == 'x' && v > 0x7f {
                    '\u{fffd}'
                } else {
                    char::from_u32(v).ok_or(SYNTAX)?
                }
            }
            '0'..='7' => {
                let mut v = esc.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars.next().and_then(|c| c.to_digit(8)).ok_or(SYNTAX)?;
                    v = v * 8 + d;
                }
                if v > 0xff {
                    return Err(SYNTAX.to_string());
                }
                if v > 0x7f {
                    '\u{fffd}'
                } else {
                    char::from_u32(v).ok_or(SYNTAX)?
                }
            }
            _ => return Err(SYNTAX.to_string()),
        };
        out.push(decoded);
    }
    if quote_char == '\'' && out.chars().count() != 1 {
        return Err(SYNTAX.to_string());
    }
    Ok(out)
}

/// Go's `newNumber`: every interpretation of a number literal.
// The conversions between a constant's int, uint and float forms are Go's own (`parse.go`'s
// `float64(i)`, `int64(f)`, `uint64(f)`); the float-to-integer ones only run on integral floats
// inside the target's range.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
fn number(text: &str, typ: Tok) -> Result<Number, String> {
    let mut n = Number {
        text: text.into(),
        int: None,
        uint: None,
        float: None,
    };
    if typ == Tok::CharConst {
        let c = unquote(text)?
            .chars()
            .next()
            .ok_or_else(|| format!("malformed character constant: {text}"))?;
        n.int = Some(c as i64);
        n.uint = Some(c as u64);
        n.float = Some(f64::from(u32::from(c)));
        return Ok(n);
    }
    if typ == Tok::Complex || text.ends_with('i') {
        return Err(format!("complex number {text} is not supported"));
    }
    if let Some((neg, u)) = parse_int_literal(text) {
        if !neg {
            n.uint = Some(u);
        }
        let i = if neg {
            0i64.checked_sub_unsigned(u)
        } else {
            i64::try_from(u).ok()
        };
        if let Some(i) = i {
            n.int = Some(i);
            if i == 0 {
                n.uint = Some(0);
            }
        }
    }
    if let Some(i) = n.int {
        n.float = Some(i as f64);
    } else if let Some(u) = n.uint {
        n.float = Some(u as f64);
    } else if let Ok(f) = text.replace('_', "").parse::<f64>() {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {text}"));
        }
        n.float = Some(f);
        if f.fract() == 0.0 && f.abs() < 9.2e18 {
            n.int = Some(f as i64);
        }
        if f.fract() == 0.0 && (0.0..1.8e19).contains(&f) {
            n.uint = Some(f as u64);
        }
    }
    if n.int.is_none() && n.uint.is_none() && n.float.is_none() {
        return Err(format!("illegal number syntax: {}", quote(text)));
    }
    Ok(n)
}
