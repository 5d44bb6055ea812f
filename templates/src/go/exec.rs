//! Executes a parsed template against one parameter set, following `text/template/exec.go`.
//!
//! Points of Go semantics that templates observe, and that this executor keeps:
//! * a missing map key yields an invalid value (`<no value>`), the zero value, or the error
//!   `map has no entry for key "k"`, per `missingkey`;
//! * after each command of a pipeline an `interface{}` is unwrapped, so a nil (JSON null, nil
//!   function result) becomes the invalid value and prints `<no value>`;
//! * values taken out of maps and lists are statically `interface{}` ("boxed"): field access on
//!   such a string fails with `can't evaluate field x in type interface {}`, on a string held in a
//!   variable or dot (unboxed) with `... in type string`;
//! * function arguments are converted to the parameter types of the Go function they stand for,
//!   with Go's errors (`wrong type for value; expected int; got float64`, `invalid value; expected
//!   string`, `wrong number of args for f: want 2 got 1`);
//! * `and`/`or` short-circuit; `range` visits map keys in order and integers as `0..n`;
//! * Helm's `include` (with [`crate::mode::Library::Helm`]) executes a `define`d template like
//!   `{{template}}` does, with a fresh variable scope, into a string instead of the output.
//!
//! Errors are formatted like Go's: `template: :LINE:COL: executing "NAME" at <NODE>: MESSAGE`.

use std::collections::BTreeMap;
use std::fmt::Display;

use super::ast::{Arg, Branch, Cmd, ListNode, Node, Number, Pipe, Program, TemplateCall};
use super::budget::{Budget, MAX_EXEC_DEPTH, go_int};
use super::fmt;
use super::strconv::quote;
use super::value::{Elem, Str, Value};
use crate::funcs::func::{Eval, Func, Param};
use crate::limits::{MAX_LIST_LEN, MAX_OUTPUT_BYTES};
use crate::mode::MissingKey;
use crate::params::Params;

type R<T> = Result<T, String>;

/// A value with the static-type fact Go's reflection keeps: whether it sits in an `interface{}`.
#[derive(Clone, Debug)]
struct Slot<'a> {
    v: Value<'a>,
    boxed: bool,
}

impl<'a> Slot<'a> {
    fn plain(v: Value<'a>) -> Self {
        Slot { v, boxed: false }
    }
}

struct Var<'a> {
    name: &'a str,
    slot: Slot<'a>,
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// Where a function was called from, for error context: a command, or an argument position.
#[derive(Clone, Copy)]
enum At<'t> {
    Cmd(&'t Cmd),
    Arg(&'t Arg),
}

impl At<'_> {
    fn pos(&self) -> usize {
        match self {
            At::Cmd(c) => c.pos,
            At::Arg(a) => a.pos(),
        }
    }
    fn text(&self) -> String {
        match self {
            At::Cmd(c) => c.to_string(),
            At::Arg(a) => a.to_string(),
        }
    }
}

struct Exec<'a> {
    src: &'a str,
    program: &'a Program,
    missing_key: MissingKey,
    /// The template being executed ("" for the main one), for error messages.
    name: &'a str,
    out: String,
    vars: Vec<Var<'a>>,
    /// Evaluated arguments of the function calls in progress (a stack shared by nested calls).
    args: Vec<Value<'a>>,
    budget: Budget,
    depth: usize,
}

pub(crate) fn execute(
    src: &str,
    program: &Program,
    params: &Params,
    missing_key: MissingKey,
) -> R<String> {
    let root = Slot::plain(Value::JMap(params));
    let mut ex = Exec {
        src,
        program,
        missing_key,
        name: "",
        out: String::with_capacity(src.len() + 32),
        vars: vec![Var {
            name: "$",
            slot: root.clone(),
        }],
        args: Vec::new(),
        budget: Budget::new(),
        depth: 0,
    };
    ex.walk_list(&root, &program.root)?;
    Ok(ex.out)
}

/// Go's `ErrorContext`: line and column (0-based byte offset in the line) of a position.
fn location(src: &str, pos: usize) -> (usize, usize) {
    let before = src.get(..pos).unwrap_or(src);
    let line = 1 + before.matches('\n').count();
    let col = match before.rfind('\n') {
        Some(nl) => pos - nl - 1,
        None => pos,
    };
    (line, col)
}

/// Go's `isHexInt` / `isRuneInt` checks that keep `0x1E` and `'a'` integers.
fn looks_int(text: &str) -> bool {
    let b = text.as_bytes();
    let hex = b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' && !text.contains(['p', 'P']);
    hex || text.starts_with('\'')
}

impl<'a> Exec<'a> {
    fn err(&self, pos: usize, context: &dyn Display, msg: &str) -> String {
        let (line, col) = location(self.src, pos);
        let mut ctx = context.to_string();
        if ctx.chars().count() > 20 {
            ctx = ctx.chars().take(20).collect::<String>() + "...";
        }
        format!(
            "template: :{line}:{col}: executing {} at <{ctx}>: {msg}",
            quote(self.name)
        )
    }

    fn spend(&mut self, pos: usize, context: &dyn Display) -> R<()> {
        self.budget.spend(1).map_err(|e| self.err(pos, context, &e))
    }

    fn enter(&mut self, pos: usize, context: &dyn Display) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_EXEC_DEPTH {
            return Err(self.err(
                pos,
                context,
                &format!("exceeded maximum template depth ({MAX_EXEC_DEPTH})"),
            ));
        }
        Ok(())
    }

    fn write(&mut self, s: &str) -> R<()> {
        self.out.push_str(s);
        if self.out.len() > MAX_OUTPUT_BYTES {
            return Err(format!(
                "template: : output exceeds {MAX_OUTPUT_BYTES} bytes"
            ));
        }
        Ok(())
    }

    fn walk_list(&mut self, dot: &Slot<'a>, list: &'a ListNode) -> R<Flow> {
        for node in &list.nodes {
            let flow = self.walk(dot, node)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Slot<'a>, node: &'a Node) -> R<Flow> {
        match node {
            Node::Text(t) => self.write(t)?,
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    fmt::write_value(&mut self.out, &v, &mut self.budget)
                        .map_err(|e| self.err(pipe.pos, node, &e))?;
                }
            }
            Node::If(b) => return self.walk_if_with(dot, b, node, false),
            Node::With(b) => return self.walk_if_with(dot, b, node, true),
            Node::Range(b) => return self.walk_range(dot, b, node),
            Node::Template(t) => self.walk_template(dot, t)?,
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_with(
        &mut self,
        dot: &Slot<'a>,
        b: &'a Branch,
        node: &'a Node,
        with: bool,
    ) -> R<Flow> {
        let mark = self.vars.len();
        self.enter(b.pipe.pos, node)?;
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if val.truth() {
            if with {
                self.walk_list(&Slot::plain(val), &b.list)?
            } else {
                self.walk_list(dot, &b.list)?
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)?
        } else {
            Flow::Normal
        };
        self.depth -= 1;
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Slot<'a>, b: &'a Branch, node: &'a Node) -> R<Flow> {
        let mark = self.vars.len();
        self.enter(b.pipe.pos, node)?;
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let inner = self.vars.len();
        let mut ran = false;
        match &val {
            Value::JList(_) | Value::List(_) => {
                let boxed = val.elem() == Elem::Any;
                let n = val.len().unwrap_or(0);
                for i in 0..n {
                    let Some(elem) = val.seq_get(i) else { break };
                    ran = true;
                    let index = Value::Int(go_int(i));
                    if self.iteration(b, node, inner, index, &Slot { v: elem, boxed })?
                        == Flow::Break
                    {
                        break;
                    }
                }
            }
            Value::JMap(_) | Value::Map(_) => {
                let boxed = val.elem() == Elem::Any;
                for (k, elem) in val.map_entries().unwrap_or_default() {
                    ran = true;
                    if self.iteration(b, node, inner, Value::Str(k), &Slot { v: elem, boxed })?
                        == Flow::Break
                    {
                        break;
                    }
                }
            }
            Value::Int(n) | Value::Int64(n) => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.err(
                        b.pipe.pos,
                        node,
                        &format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                for i in 0..*n {
                    ran = true;
                    let v = Value::Int(i);
                    if self.iteration(b, node, inner, v.clone(), &Slot::plain(v))? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Missing | Value::Nil => {}
            other => {
                let shown = fmt::to_string(other, &mut self.budget).unwrap_or_default();
                return Err(self.err(
                    b.pipe.pos,
                    node,
                    &format!("range can't iterate over {shown}"),
                ));
            }
        }
        if !ran && let Some(e) = &b.else_list {
            self.walk_list(dot, e)?;
        }
        self.depth -= 1;
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn iteration(
        &mut self,
        b: &'a Branch,
        node: &'a Node,
        inner: usize,
        index: Value<'a>,
        elem: &Slot<'a>,
    ) -> R<Flow> {
        self.spend(b.pipe.pos, node)?;
        let decl = &b.pipe.decl;
        match (decl.len(), b.pipe.is_assign) {
            (0, _) => {}
            (1, true) => self.set_var(&decl[0], elem.clone(), b.pipe.pos, node)?,
            (_, true) => {
                self.set_var(&decl[0], Slot::plain(index), b.pipe.pos, node)?;
                self.set_var(&decl[1], elem.clone(), b.pipe.pos, node)?;
            }
            (n, false) => {
                // The pipeline pushed the variables; the last one gets the element, the one
                // before it the index.
                if let Some(v) = self.vars.get_mut(inner - 1) {
                    v.slot = elem.clone();
                }
                if n > 1
                    && let Some(v) = self.vars.get_mut(inner - 2)
                {
                    v.slot = Slot::plain(index);
                }
            }
        }
        let flow = self.walk_list(elem, &b.list)?;
        self.vars.truncate(inner);
        Ok(flow)
    }

    fn walk_template(&mut self, dot: &Slot<'a>, t: &'a TemplateCall) -> R<()> {
        let Some((name, body)) = self.program.defs.get_key_value(&*t.name) else {
            return Err(self.err(
                t.pos,
                t,
                &format!("template {} not defined", quote(&t.name)),
            ));
        };
        self.enter(t.pos, t)?;
        let new_dot = match &t.pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Missing,
        };
        let result = self.run_define(name, body, new_dot);
        self.depth -= 1;
        result
    }

    /// Executes a `define`d template with `data` as dot and `$`, in a fresh variable scope.
    fn run_define(&mut self, name: &'a str, body: &'a ListNode, data: Value<'a>) -> R<()> {
        let slot = Slot::plain(data);
        let vars = std::mem::replace(
            &mut self.vars,
            vec![Var {
                name: "$",
                slot: slot.clone(),
            }],
        );
        let name = std::mem::replace(&mut self.name, name);
        let result = self.walk_list(&slot, body);
        self.vars = vars;
        self.name = name;
        result.map(|_| ())
    }

    /// Helm's `include NAME DATA` (arguments already evaluated into `self.args[base..]`): the
    /// output of template NAME executed with DATA, as a string. Errors are messages for
    /// `error calling include: ...`.
    fn include(&mut self, base: usize, pos: usize, at: &dyn Display) -> R<Value<'a>> {
        let wanted = self
            .args
            .get(base)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let data = self.args.get(base + 1).cloned().unwrap_or(Value::Nil);
        let Some((name, body)) = self.program.defs.get_key_value(wanted.as_str()) else {
            return Err(format!("template {} not defined", quote(&wanted)));
        };
        self.enter(pos, at)?;
        let outer = std::mem::take(&mut self.out);
        let result = self.run_define(name, body, data);
        let included = std::mem::replace(&mut self.out, outer);
        self.depth -= 1;
        result.map(|()| Value::string(included))
    }

    fn set_var(&mut self, name: &str, slot: Slot<'a>, pos: usize, at: &dyn Display) -> R<()> {
        match self.vars.iter_mut().rev().find(|v| v.name == name) {
            Some(v) => {
                v.slot = slot;
                Ok(())
            }
            None => Err(self.err(pos, at, &format!("undefined variable: {name}"))),
        }
    }

    fn var_value(&self, name: &str, at: &Arg) -> R<Slot<'a>> {
        match self.vars.iter().rev().find(|v| v.name == name) {
            Some(v) => Ok(v.slot.clone()),
            None => Err(self.err(at.pos(), at, &format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Slot<'a>, pipe: &'a Pipe) -> R<Value<'a>> {
        let mut value: Option<Value<'a>> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            // Go unwraps interface{} results: a nil interface becomes the invalid value.
            value = Some(if let Value::Nil = v {
                Value::Missing
            } else {
                v
            });
        }
        let value = value.unwrap_or(Value::Missing);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, Slot::plain(value.clone()), pipe.pos, pipe)?;
            } else {
                self.vars.push(Var {
                    name,
                    slot: Slot::plain(value.clone()),
                });
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Cmd, first: &Arg, fin: Option<&Value<'a>>) -> R<()> {
        if cmd.args.len() > 1 || fin.is_some() {
            return Err(self.err(
                first.pos(),
                first,
                &format!("can't give argument to non-function {first}"),
            ));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Slot<'a>,
        cmd: &'a Cmd,
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        self.spend(cmd.pos, cmd)?;
        let Some(first) = cmd.args.first() else {
            return Err(self.err(cmd.pos, cmd, "empty command"));
        };
        let has_args = cmd.args.len() > 1 || fin.is_some();
        match first {
            Arg::Field { idents, .. } => {
                Ok(self.field_chain(dot.clone(), idents, first, has_args)?.v)
            }
            Arg::Chain { node, fields, .. } => {
                let recv = self.chain_receiver(dot, node, first)?;
                Ok(self.field_chain(recv, fields, first, has_args)?.v)
            }
            Arg::Variable { name, fields, .. } => {
                let slot = self.var_value(name, first)?;
                if fields.is_empty() {
                    self.not_a_function(cmd, first, fin.as_ref())?;
                    return Ok(slot.v);
                }
                Ok(self.field_chain(slot, fields, first, has_args)?.v)
            }
            Arg::Func { func, .. } => {
                self.call(dot, func, first, At::Cmd(cmd), &cmd.args[1..], fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(cmd, first, fin.as_ref())?;
                self.eval_pipeline(dot, p)
            }
            Arg::Dot(_) => {
                self.not_a_function(cmd, first, fin.as_ref())?;
                Ok(dot.v.clone())
            }
            Arg::Nil(pos) => Err(self.err(*pos, first, "nil is not a command")),
            Arg::Bool(_, b) => {
                self.not_a_function(cmd, first, fin.as_ref())?;
                Ok(Value::Bool(*b))
            }
            Arg::Number(pos, n) => {
                self.not_a_function(cmd, first, fin.as_ref())?;
                self.ideal_constant(n, *pos, first)
            }
            Arg::Str { text, .. } => {
                self.not_a_function(cmd, first, fin.as_ref())?;
                Ok(Value::Str(Str::Borrowed(text)))
            }
        }
    }

    /// The value of a number literal where no type is expected (Go's `idealConstant`).
    fn ideal_constant(&self, n: &Number, pos: usize, at: &Arg) -> R<Value<'a>> {
        if let Some(f) = n.float
            && !looks_int(&n.text)
            && n.text.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Value::Float(f));
        }
        if let Some(i) = n.int {
            return Ok(Value::Int(i));
        }
        if n.uint.is_some() {
            return Err(self.err(pos, at, &format!("{} overflows int", n.text)));
        }
        Ok(Value::Missing)
    }

    /// The receiver of `(pipeline).field`.
    fn chain_receiver(&mut self, dot: &Slot<'a>, node: &'a Arg, at: &'a Arg) -> R<Slot<'a>> {
        match node {
            Arg::Nil(_) => Err(self.err(
                at.pos(),
                at,
                &format!("indirection through explicit nil in {at}"),
            )),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Field { idents, .. } => self.field_chain(dot.clone(), idents, node, false),
            Arg::Variable { name, fields, .. } => {
                let slot = self.var_value(name, node)?;
                self.field_chain(slot, fields, node, false)
            }
            Arg::Chain {
                node: inner,
                fields,
                ..
            } => {
                let recv = self.chain_receiver(dot, inner, node)?;
                self.field_chain(recv, fields, node, false)
            }
            Arg::Pipe(p) => Ok(Slot::plain(self.eval_pipeline(dot, p)?)),
            Arg::Func { func, .. } => Ok(Slot::plain(self.call(
                dot,
                func,
                node,
                At::Arg(node),
                &[],
                None,
            )?)),
            other => Ok(Slot::plain(self.eval_arg(dot, Param::Any, other)?)),
        }
    }

    fn field_chain(
        &mut self,
        mut recv: Slot<'a>,
        idents: &'a [Box<str>],
        at: &Arg,
        has_args: bool,
    ) -> R<Slot<'a>> {
        let n = idents.len();
        for (i, name) in idents.iter().enumerate() {
            recv = self.field(&recv, name, at, has_args && i + 1 == n)?;
        }
        Ok(recv)
    }

    /// Go's `evalField` on a map, a semver version or anything else.
    fn field(&self, recv: &Slot<'a>, name: &str, at: &Arg, has_args: bool) -> R<Slot<'a>> {
        let fail = |msg: String| self.err(at.pos(), at, &msg);
        match &recv.v {
            Value::Missing => {
                if self.missing_key == MissingKey::Error {
                    return Err(fail(format!("nil data; no entry for key {}", quote(name))));
                }
                Ok(Slot::plain(Value::Missing))
            }
            Value::Nil => Err(fail(format!(
                "nil pointer evaluating interface {{}}.{name}"
            ))),
            Value::JMap(_) | Value::Map(_) => {
                if has_args {
                    return Err(fail(format!("{name} is not a method but has arguments")));
                }
                let elem = recv.v.elem();
                let boxed = elem == Elem::Any;
                match recv.v.map_get(name) {
                    Some(v) => Ok(Slot { v, boxed }),
                    None => match self.missing_key {
                        MissingKey::Default => Ok(Slot::plain(Value::Missing)),
                        MissingKey::Zero => Ok(match elem {
                            Elem::Any => Slot {
                                v: Value::Nil,
                                boxed: true,
                            },
                            Elem::Str => Slot::plain(Value::string("")),
                            Elem::Int => Slot::plain(Value::Int(0)),
                        }),
                        MissingKey::Error => {
                            Err(fail(format!("map has no entry for key {}", quote(name))))
                        }
                    },
                }
            }
            Value::Version(v) => match v.method(name) {
                Some(_) if has_args => Err(fail(format!(
                    "wrong number of args for {name}: want 0 got 1"
                ))),
                Some(result) => Ok(Slot::plain(result)),
                None => Err(fail(format!(
                    "can't evaluate field {name} in type *semver.Version"
                ))),
            },
            other => {
                let typ = if recv.boxed {
                    "interface {}".to_string()
                } else {
                    other.go_type()
                };
                Err(fail(format!("can't evaluate field {name} in type {typ}")))
            }
        }
    }

    /// Calls a function with the unevaluated `args` and the previous pipeline value `fin`.
    fn call(
        &mut self,
        dot: &Slot<'a>,
        f: &'static Func,
        ident: &'a Arg,
        at: At<'a>,
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        let name = f.name;
        let num_in = args.len() + usize::from(fin.is_some());
        let fixed = f.params.len();
        if f.variadic.is_some() {
            if num_in < fixed {
                return Err(self.err(
                    ident.pos(),
                    ident,
                    &format!(
                        "wrong number of args for {name}: want at least {fixed} got {}",
                        args.len()
                    ),
                ));
            }
        } else if num_in != fixed {
            return Err(self.err(
                ident.pos(),
                ident,
                &format!("wrong number of args for {name}: want {fixed} got {num_in}"),
            ));
        }
        let imp = match f.eval {
            Eval::ShortCircuit { is_or } => {
                let mut v = Value::Missing;
                for a in args {
                    v = self.eval_arg(dot, Param::Reflect, a)?;
                    if v.truth() == is_or {
                        return Ok(v);
                    }
                }
                if let Some(fin) = fin {
                    v = self.validate(fin, Param::Reflect, ident)?;
                }
                return Ok(v);
            }
            Eval::Call(imp) => Some(imp),
            Eval::Include => None,
        };
        let base = self.args.len();
        for (i, a) in args.iter().enumerate() {
            let v = self.eval_arg(dot, f.param(i), a)?;
            self.args.push(v);
        }
        if let Some(fin) = fin {
            let v = self.validate(fin, f.param(num_in - 1), ident)?;
            self.args.push(v);
        }
        let result = match imp {
            Some(imp) => imp(&mut self.budget, &self.args[base..]),
            None => self.include(base, at.pos(), &at.text()),
        };
        self.args.truncate(base);
        let v = result
            .map_err(|e| self.err(at.pos(), &at.text(), &format!("error calling {name}: {e}")))?;
        // Results count against the render's memory budget; single results also have size caps.
        let (bytes, too_big) = match &v {
            Value::Str(s) => (s.len(), s.len() > MAX_OUTPUT_BYTES),
            Value::List(l) => (
                l.items.len() * std::mem::size_of::<Value<'_>>(),
                l.items.len() > MAX_LIST_LEN,
            ),
            _ => (0, false),
        };
        let budget = if too_big {
            Err("result exceeds the size limit".to_string())
        } else {
            self.budget.alloc(bytes)
        };
        budget
            .map_err(|e| self.err(at.pos(), &at.text(), &format!("error calling {name}: {e}")))?;
        Ok(v)
    }

    /// Evaluates an argument for a parameter of type `p` (Go's `evalArg`).
    fn eval_arg(&mut self, dot: &Slot<'a>, p: Param, arg: &'a Arg) -> R<Value<'a>> {
        let mismatch = |s: &Self| {
            let msg = match p {
                Param::Str => format!("expected string; found {arg}"),
                Param::Int => format!("expected integer; found {arg}"),
                Param::Float => format!("expected float; found {arg}"),
                Param::Bool => format!("expected bool; found {arg}"),
                _ => format!("can't handle {arg} for arg of type {}", p.go_type()),
            };
            s.err(arg.pos(), arg, &msg)
        };
        match arg {
            Arg::Dot(_) => self.validate(dot.v.clone(), p, arg),
            Arg::Nil(_) => match p {
                Param::Any => Ok(Value::Nil),
                Param::Reflect => Ok(Value::Missing),
                Param::Map => Ok(Value::map(Elem::Any, BTreeMap::default())),
                _ => Err(self.err(
                    arg.pos(),
                    arg,
                    &format!("cannot assign nil to {}", p.go_type()),
                )),
            },
            Arg::Field { idents, .. } => {
                let s = self.field_chain(dot.clone(), idents, arg, false)?;
                self.validate(s.v, p, arg)
            }
            Arg::Variable { name, fields, .. } => {
                let slot = self.var_value(name, arg)?;
                let s = self.field_chain(slot, fields, arg, false)?;
                self.validate(s.v, p, arg)
            }
            Arg::Chain { node, fields, .. } => {
                let recv = self.chain_receiver(dot, node, arg)?;
                let s = self.field_chain(recv, fields, arg, false)?;
                self.validate(s.v, p, arg)
            }
            Arg::Pipe(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                self.validate(v, p, arg)
            }
            Arg::Func { func, .. } => {
                let v = self.call(dot, func, arg, At::Arg(arg), &[], None)?;
                self.validate(v, p, arg)
            }
            Arg::Bool(_, b) => match p {
                Param::Any | Param::Reflect | Param::Bool => Ok(Value::Bool(*b)),
                _ => Err(mismatch(self)),
            },
            Arg::Number(pos, n) => match p {
                Param::Any | Param::Reflect => self.ideal_constant(n, *pos, arg),
                Param::Int => n.int.map(Value::Int).ok_or_else(|| mismatch(self)),
                Param::Float => n.float.map(Value::Float).ok_or_else(|| mismatch(self)),
                _ => Err(mismatch(self)),
            },
            Arg::Str { text, .. } => match p {
                Param::Any | Param::Reflect | Param::Str => Ok(Value::Str(Str::Borrowed(text))),
                _ => Err(mismatch(self)),
            },
        }
    }

    /// Checks a computed value against a parameter type (Go's `validateType`).
    fn validate(&self, v: Value<'a>, p: Param, at: &Arg) -> R<Value<'a>> {
        let ok = match (&p, &v) {
            (Param::Any, Value::Missing) => return Ok(Value::Nil),
            (Param::Reflect, Value::Nil) => return Ok(Value::Missing),
            (Param::Map, Value::Missing) => return Ok(Value::map(Elem::Any, BTreeMap::default())),
            (Param::Any | Param::Reflect, _)
            | (Param::Str, Value::Str(_))
            | (Param::Int, Value::Int(_))
            | (Param::Float, Value::Float(_))
            | (Param::Bool, Value::Bool(_))
            | (Param::Map, Value::JMap(_)) => true,
            (Param::Map, Value::Map(m)) => m.borrow().elem == Elem::Any,
            _ => false,
        };
        if ok {
            return Ok(v);
        }
        let msg = match v {
            Value::Missing => format!("invalid value; expected {}", p.go_type()),
            // Only a nil held in an interface{} reaches here.
            Value::Nil => format!(
                "wrong type for value; expected {}; got interface {{}}",
                p.go_type()
            ),
            other => format!(
                "wrong type for value; expected {}; got {}",
                p.go_type(),
                other.go_type()
            ),
        };
        Err(self.err(at.pos(), at, &msg))
    }
}
