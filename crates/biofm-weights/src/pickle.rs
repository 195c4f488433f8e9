//! A pickle interpreter that never executes code.
//!
//! It follows the opcode semantics of CPython's `pickle._Unpickler` for the binary
//! protocols (2-5, plus the few text opcodes older `torch.save` files contain), but
//! `GLOBAL`/`STACK_GLOBAL` only record the dotted name and `REDUCE`/`NEWOBJ`/`BUILD` only
//! interpret the handful of callables `torch.save` uses to rebuild tensors
//! (`torch._utils._rebuild_tensor{,_v2,_v3}`, `_rebuild_parameter{,_with_state}`,
//! `torch._tensor._rebuild_from_type_v2`, `collections.OrderedDict`). Anything else
//! becomes an [`Obj::Opaque`] value naming its class, so checkpoints that also pickle an
//! `argparse.Namespace`, numpy scalars or optimizer state still load.
//!
//! Objects live in an arena and are referred to by index, which gives the memo Python's
//! reference semantics (a dict memoised before its items are set is the same dict later)
//! and keeps hostile nesting from recursing in `Drop`.

use crate::store::StoredDType;
use std::collections::HashMap;

/// Index of an object in [`Pickle::objs`].
pub(crate) type Id = usize;

/// The persistent id `torch.save` writes for a storage:
/// `('storage', <storage class>, key, location, numel[, view_metadata])`.
#[derive(Debug, Clone)]
pub(crate) struct StorageRef {
    /// Storage class name, e.g. `torch.FloatStorage` or `torch.storage.UntypedStorage`.
    pub class: String,
    /// Element type; `None` for storage classes biofm cannot read (complex, quantized).
    pub dtype: Option<StoredDType>,
    /// Bytes per storage element.
    pub elem_size: usize,
    /// Name of the storage record (`data/<key>` in zip archives).
    pub key: String,
    /// Number of storage elements.
    pub numel: u64,
    /// Legacy storage views: `(offset, numel)` in elements of the window on storage `key`
    /// that the tensor's offsets count from.
    pub view: Option<(u64, u64)>,
}

/// A tensor rebuilt from `_rebuild_tensor*`: a strided window on a storage.
#[derive(Debug, Clone)]
pub(crate) struct TensorRef {
    pub storage: StorageRef,
    /// Element type, or the torch dtype name that biofm cannot read.
    pub dtype: Result<StoredDType, String>,
    /// Offset in elements of `dtype` from the start of the storage (view).
    pub offset: u64,
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
}

#[derive(Debug)]
pub(crate) enum Obj {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too wide for i64: little-endian two's complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    /// Items in insertion order; a repeated key keeps its last value, as in Python.
    Dict(Vec<(Id, Id)>),
    /// A `module.name` reference; nothing is imported.
    Global(String),
    Storage(StorageRef),
    Tensor(TensorRef),
    /// Any other object: the dotted class or function that would have built it.
    Opaque(String),
}

impl Obj {
    /// Short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Obj::None => "None".into(),
            Obj::Bool(b) => format!("bool {}", if *b { "True" } else { "False" }),
            Obj::Int(v) => format!("int {v}"),
            Obj::BigInt(b) => format!("{}-byte int", b.len()),
            Obj::Float(v) => format!("float {v}"),
            Obj::Str(s) if s.chars().count() > 60 => {
                format!("str {:?}...", s.chars().take(60).collect::<String>())
            }
            Obj::Str(s) => format!("str {s:?}"),
            Obj::Bytes(b) => format!("{} bytes", b.len()),
            Obj::Tuple(v) => format!("tuple of {}", v.len()),
            Obj::List(v) => format!("list of {}", v.len()),
            Obj::Dict(v) => format!("dict of {}", v.len()),
            Obj::Global(g) => format!("reference to {g}"),
            Obj::Storage(_) => "storage".into(),
            Obj::Tensor(_) => "tensor".into(),
            Obj::Opaque(c) => format!("{c} object"),
        }
    }
}

/// A parse failure at byte `offset` of the pickle.
#[derive(Debug)]
pub(crate) struct PickleError {
    pub offset: usize,
    pub msg: String,
}

/// A parsed pickle: its objects and the root.
pub(crate) struct Pickle {
    pub objs: Vec<Obj>,
    pub root: Id,
    /// Offset just past the STOP opcode.
    pub end: usize,
}

impl Pickle {
    pub fn get(&self, id: Id) -> &Obj {
        // Ids only come from this arena, so they are always in range.
        &self.objs[id]
    }

    /// The value of string key `key` in dict `dict` (the last one, as Python keeps).
    pub fn dict_get(&self, dict: Id, key: &str) -> Option<Id> {
        match self.get(dict) {
            Obj::Dict(items) => items
                .iter()
                .rev()
                .find(|(k, _)| matches!(self.get(*k), Obj::Str(s) if s == key))
                .map(|&(_, v)| v),
            _ => None,
        }
    }
}

/// Parses one pickle starting at `start`; stops at its STOP opcode.
pub(crate) fn parse(data: &[u8], start: usize) -> Result<Pickle, PickleError> {
    let mut m = Machine {
        data,
        pos: start,
        objs: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let at = m.pos;
        match m.step() {
            Ok(Some(root)) => {
                return Ok(Pickle {
                    objs: m.objs,
                    root,
                    end: m.pos,
                })
            }
            Ok(None) => {}
            Err(msg) => return Err(PickleError { offset: at, msg }),
        }
    }
}

type Step<T> = Result<T, String>;

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    objs: Vec<Obj>,
    stack: Vec<Id>,
    /// Stack lengths at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Step<&'a [u8]> {
        let data = self.data;
        let b = self
            .pos
            .checked_add(n)
            .and_then(|end| data.get(self.pos..end))
            .ok_or_else(|| {
                format!(
                    "truncated pickle: needs {n} more bytes, {} left",
                    data.len().saturating_sub(self.pos)
                )
            })?;
        self.pos += n;
        Ok(b)
    }
    fn array<const N: usize>(&mut self) -> Step<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Step<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Step<u16> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Step<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Step<u64> {
        self.array().map(u64::from_le_bytes)
    }
    /// A length prefix of `width` bytes (1, 4 or 8), then that many bytes.
    fn counted(&mut self, width: usize) -> Step<&'a [u8]> {
        let n = match width {
            1 => u64::from(self.u8()?),
            4 => u64::from(self.u32()?),
            _ => self.u64()?,
        };
        let n = usize::try_from(n)
            .map_err(|_| format!("length {n} does not fit in memory addresses"))?;
        self.take(n)
    }
    /// A text line without its trailing `\n`.
    fn line(&mut self) -> Step<String> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated pickle: unterminated text argument")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn push(&mut self, o: Obj) {
        self.objs.push(o);
        self.stack.push(self.objs.len() - 1);
    }
    fn pop(&mut self) -> Step<Id> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("pickle pops past a MARK".into());
        }
        self.stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".to_string())
    }
    fn top(&self) -> Step<Id> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| "pickle stack underflow".to_string())
    }
    /// Pops everything above the last MARK, and the mark.
    fn pop_mark(&mut self) -> Step<Vec<Id>> {
        let m = self.marks.pop().ok_or("pickle has no MARK to pop to")?;
        Ok(self.stack.split_off(m.min(self.stack.len())))
    }
    /// A memo index written as text (PUT, GET).
    fn index_line(&mut self) -> Step<u64> {
        let line = self.line()?;
        line.parse().map_err(|_| format!("bad memo index `{line}`"))
    }
    fn int_from_le(b: &[u8]) -> Obj {
        if b.len() <= 8 {
            // Sign-extend the little-endian two's complement bytes.
            let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut a = [fill; 8];
            a[..b.len()].copy_from_slice(b);
            Obj::Int(i64::from_le_bytes(a))
        } else {
            Obj::BigInt(b.to_vec())
        }
    }
    /// Appends `items` to the list (or ignores them for an opaque object, as a list
    /// subclass we do not model).
    fn extend_list(&mut self, target: Id, items: Vec<Id>) -> Step<()> {
        match &mut self.objs[target] {
            Obj::List(v) => v.extend(items),
            Obj::Opaque(_) => {}
            o => return Err(format!("APPEND to a {}", o.describe())),
        }
        Ok(())
    }
    fn extend_dict(&mut self, target: Id, items: Vec<Id>) -> Step<()> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of items".into());
        }
        let pairs = items.chunks_exact(2).map(|p| (p[0], p[1]));
        match &mut self.objs[target] {
            Obj::Dict(v) => v.extend(pairs),
            Obj::Opaque(_) => {}
            o => return Err(format!("SETITEM on a {}", o.describe())),
        }
        Ok(())
    }

    /// Executes one opcode; returns the root object at STOP.
    fn step(&mut self) -> Step<Option<Id>> {
        let op = self.u8()?;
        match op {
            0x80 => {
                self.u8()?; // PROTO
            }
            0x95 => {
                self.u64()?; // FRAME: a length hint only
            }
            b'.' => {
                let root = self.pop()?;
                return Ok(Some(root));
            }
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?;
                self.stack.push(top);
            }
            b'N' => self.push(Obj::None),
            0x88 => self.push(Obj::Bool(true)),
            0x89 => self.push(Obj::Bool(false)),
            b'J' => {
                let v = self.array().map(i32::from_le_bytes)?;
                self.push(Obj::Int(v.into()));
            }
            b'K' => {
                let v = self.u8()?;
                self.push(Obj::Int(v.into()));
            }
            b'M' => {
                let v = self.u16()?;
                self.push(Obj::Int(v.into()));
            }
            // LONG1, LONG4: little-endian two's complement.
            0x8a | 0x8b => {
                let b = self.counted(if op == 0x8a { 1 } else { 4 })?;
                self.push(Self::int_from_le(b));
            }
            b'I' | b'L' => {
                let line = self.line()?;
                let o = match line.as_str() {
                    "01" if op == b'I' => Obj::Bool(true),
                    "00" if op == b'I' => Obj::Bool(false),
                    s => Obj::Int(
                        s.trim_end_matches('L')
                            .parse()
                            .map_err(|_| format!("bad integer literal `{s}`"))?,
                    ),
                };
                self.push(o);
            }
            b'G' => {
                let v = self.array().map(f64::from_be_bytes)?;
                self.push(Obj::Float(v));
            }
            b'F' => {
                let line = self.line()?;
                let v = line
                    .parse()
                    .map_err(|_| format!("bad float literal `{line}`"))?;
                self.push(Obj::Float(v));
            }
            // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8.
            b'X' | 0x8c | 0x8d => {
                let b = self.counted(match op {
                    b'X' => 4,
                    0x8c => 1,
                    _ => 8,
                })?;
                let s =
                    std::str::from_utf8(b).map_err(|e| format!("invalid UTF-8 in string: {e}"))?;
                self.push(Obj::Str(s.to_string()));
            }
            // BINSTRING, SHORT_BINSTRING: Python 2 `str`, read as Latin-1 like
            // `torch.load(encoding="latin1")`.
            b'T' | b'U' => {
                let b = self.counted(if op == b'T' { 4 } else { 1 })?;
                self.push(Obj::Str(b.iter().map(|&c| char::from(c)).collect()));
            }
            // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8.
            b'B' | b'C' | 0x8e | 0x96 => {
                let b = self.counted(match op {
                    b'B' => 4,
                    b'C' => 1,
                    _ => 8,
                })?;
                self.push(Obj::Bytes(b.to_vec()));
            }
            b')' => self.push(Obj::Tuple(Vec::new())),
            b']' => self.push(Obj::List(Vec::new())),
            b'}' => self.push(Obj::Dict(Vec::new())),
            0x8f => self.push(Obj::Opaque("builtins.set".into())),
            b't' => {
                let items = self.pop_mark()?;
                self.push(Obj::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(Obj::Tuple(items));
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Obj::List(items));
            }
            b'd' => {
                let items = self.pop_mark()?;
                self.push(Obj::Dict(Vec::new()));
                let d = self.top()?;
                self.extend_dict(d, items)?;
            }
            0x91 => {
                self.pop_mark()?;
                self.push(Obj::Opaque("builtins.frozenset".into()));
            }
            b'a' => {
                let v = self.pop()?;
                let list = self.top()?;
                self.extend_list(list, vec![v])?;
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                self.extend_list(target, items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                let d = self.top()?;
                self.extend_dict(d, vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                let d = self.top()?;
                self.extend_dict(d, items)?;
            }
            // BINPUT, LONG_BINPUT, PUT, MEMOIZE.
            b'q' | b'r' | b'p' | 0x94 => {
                let i = match op {
                    b'q' => u64::from(self.u8()?),
                    b'r' => u64::from(self.u32()?),
                    b'p' => self.index_line()?,
                    _ => self.memo.len() as u64,
                };
                let top = self.top()?;
                self.memo.insert(i, top);
            }
            // BINGET, LONG_BINGET, GET.
            b'h' | b'j' | b'g' => {
                let i = match op {
                    b'h' => u64::from(self.u8()?),
                    b'j' => u64::from(self.u32()?),
                    _ => self.index_line()?,
                };
                let id = self
                    .memo
                    .get(&i)
                    .copied()
                    .ok_or_else(|| format!("memo entry {i} used before it is set"))?;
                self.stack.push(id);
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.push(Obj::Global(format!("{module}.{name}")));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let o = match (&self.objs[module], &self.objs[name]) {
                    (Obj::Str(m), Obj::Str(n)) => Obj::Global(format!("{m}.{n}")),
                    _ => return Err("STACK_GLOBAL needs two strings".into()),
                };
                self.push(o);
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let id = self.reduce(callable, args, true)?;
                self.stack.push(id);
            }
            0x81 => {
                let _args = self.pop()?;
                let cls = self.pop()?;
                let o = Obj::Opaque(self.class_name(cls));
                self.push(o);
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let _args = self.pop()?;
                let cls = self.pop()?;
                let o = Obj::Opaque(self.class_name(cls));
                self.push(o);
            }
            b'i' => {
                let module = self.line()?;
                let name = self.line()?;
                self.pop_mark()?;
                self.push(Obj::Opaque(format!("{module}.{name}")));
            }
            b'o' => {
                let items = self.pop_mark()?;
                let cls = *items.first().ok_or("OBJ without a class")?;
                let o = Obj::Opaque(self.class_name(cls));
                self.push(o);
            }
            b'b' => {
                // BUILD sets instance state (e.g. `_metadata` on a state dict's OrderedDict);
                // none of it is needed to locate tensors.
                self.pop()?;
                self.top()?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let o = self.persistent_load(pid)?;
                self.push(o);
            }
            _ => {
                return Err(format!(
                    "unsupported pickle opcode 0x{op:02x}{}",
                    printable(op)
                ))
            }
        }
        Ok(None)
    }

    fn class_name(&self, cls: Id) -> String {
        match &self.objs[cls] {
            Obj::Global(g) => g.clone(),
            o => o.describe(),
        }
    }

    fn tuple(&self, id: Id, what: &str) -> Step<&[Id]> {
        match &self.objs[id] {
            Obj::Tuple(v) => Ok(v),
            o => Err(format!("{what}: expected a tuple, found {}", o.describe())),
        }
    }
    fn int(&self, id: Id, what: &str) -> Step<i64> {
        match self.objs[id] {
            Obj::Int(v) => Ok(v),
            Obj::Bool(b) => Ok(b.into()),
            ref o => Err(format!("{what}: expected an int, found {}", o.describe())),
        }
    }
    fn uint(&self, id: Id, what: &str) -> Step<u64> {
        let v = self.int(id, what)?;
        u64::try_from(v).map_err(|_| format!("{what}: negative value {v}"))
    }
    fn dims(&self, id: Id, what: &str) -> Step<Vec<usize>> {
        self.tuple(id, what)?
            .iter()
            .map(|&d| {
                let v = self.uint(d, what)?;
                usize::try_from(v)
                    .map_err(|_| format!("{what}: {v} does not fit in memory addresses"))
            })
            .collect()
    }

    /// Interprets `callable(*args)` for the callables torch checkpoints need; anything
    /// else yields an opaque object. `nested` allows one level of
    /// `_rebuild_from_type_v2(func, type, args, state)`.
    fn reduce(&mut self, callable: Id, args: Id, allow_nested: bool) -> Step<Id> {
        let name = match &self.objs[callable] {
            Obj::Global(g) => g.clone(),
            o => {
                let o = Obj::Opaque(format!("result of calling a {}", o.describe()));
                self.objs.push(o);
                return Ok(self.objs.len() - 1);
            }
        };
        let obj = match name.as_str() {
            "torch._utils._rebuild_tensor"
            | "torch._utils._rebuild_tensor_v2"
            | "torch._utils._rebuild_tensor_v3" => Obj::Tensor(self.rebuild_tensor(&name, args)?),
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                // (data, requires_grad, backward_hooks[, state]): the data is the tensor.
                return self
                    .tuple(args, &name)?
                    .first()
                    .copied()
                    .ok_or_else(|| format!("{name}: no arguments"));
            }
            "torch._tensor._rebuild_from_type_v2" if allow_nested => {
                // (func, type, args, state): a tensor subclass or a tensor with attributes.
                let a = self.tuple(args, &name)?;
                let (&func, &inner) = a
                    .first()
                    .zip(a.get(2))
                    .ok_or_else(|| format!("{name}: too few arguments"))?;
                return self.reduce(func, inner, false);
            }
            "collections.OrderedDict" | "collections.defaultdict" => {
                // OrderedDict(pairs) in old protocols; items usually follow via SETITEMS.
                let mut items = Vec::new();
                if name == "collections.OrderedDict" {
                    if let Some(&pairs) = self.tuple(args, &name)?.first() {
                        if let Obj::List(ps) = &self.objs[pairs] {
                            for &p in ps {
                                match self.tuple(p, "OrderedDict item")? {
                                    [k, v] => items.push((*k, *v)),
                                    _ => return Err("OrderedDict item is not a pair".into()),
                                }
                            }
                        }
                    }
                }
                Obj::Dict(items)
            }
            "copyreg._reconstructor" => {
                // (cls, base, state): an instance of cls.
                let cls = self.tuple(args, &name)?.first().copied();
                Obj::Opaque(cls.map_or(name.clone(), |c| self.class_name(c)))
            }
            _ => Obj::Opaque(name),
        };
        self.objs.push(obj);
        Ok(self.objs.len() - 1)
    }

    /// `_rebuild_tensor(storage, storage_offset, size, stride)`,
    /// `_rebuild_tensor_v2(..., requires_grad, backward_hooks[, metadata])`,
    /// `_rebuild_tensor_v3(..., requires_grad, backward_hooks, dtype[, metadata])`.
    fn rebuild_tensor(&self, name: &str, args: Id) -> Step<TensorRef> {
        let a = self.tuple(args, name)?;
        let min = if name.ends_with("_v3") { 7 } else { 4 };
        if a.len() < min {
            return Err(format!(
                "{name}: expected at least {min} arguments, found {}",
                a.len()
            ));
        }
        let storage = match &self.objs[a[0]] {
            Obj::Storage(s) => s.clone(),
            o => {
                return Err(format!(
                    "{name}: expected a storage, found {}",
                    o.describe()
                ))
            }
        };
        let dtype = if name.ends_with("_v3") {
            match &self.objs[a[6]] {
                Obj::Global(g) => g
                    .strip_prefix("torch.")
                    .and_then(dtype_from_torch_name)
                    .ok_or_else(|| g.clone()),
                o => return Err(format!("{name}: expected a dtype, found {}", o.describe())),
            }
        } else {
            storage.dtype.ok_or_else(|| storage.class.clone())
        };
        let offset = self.uint(a[1], "storage offset")?;
        let shape = self.dims(a[2], "tensor size")?;
        let strides = self.dims(a[3], "tensor stride")?;
        if shape.len() != strides.len() {
            return Err(format!(
                "{name}: size {shape:?} and stride {strides:?} differ in length"
            ));
        }
        Ok(TensorRef {
            storage,
            dtype,
            offset,
            shape,
            strides,
        })
    }

    /// `('storage', storage_class, key, location, numel[, view_metadata])`; legacy files
    /// also use `('module', class, source_file, source)` for pickled modules.
    fn persistent_load(&self, pid: Id) -> Step<Obj> {
        let t = self.tuple(pid, "persistent id")?;
        let field = |i: usize| {
            t.get(i)
                .copied()
                .ok_or_else(|| format!("persistent id has only {} fields", t.len()))
        };
        let text = |i: usize| -> Step<String> {
            match &self.objs[field(i)?] {
                Obj::Str(s) => Ok(s.clone()),
                Obj::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
                o => Err(format!(
                    "persistent id field {i}: expected a string, found {}",
                    o.describe()
                )),
            }
        };
        match text(0)?.as_str() {
            "storage" => {
                let class = match &self.objs[field(1)?] {
                    Obj::Global(g) => g.clone(),
                    o => return Err(format!("storage type is a {}, not a class", o.describe())),
                };
                let (dtype, elem_size) = storage_class(&class)
                    .ok_or_else(|| format!("unknown storage class {class}"))?;
                let key = text(2)?;
                let numel = self.uint(field(4)?, "storage size")?;
                // Legacy storage views: (view_key, offset, view_size).
                let view = match t.get(5) {
                    Some(&v) if !matches!(self.objs[v], Obj::None) => {
                        let v = self.tuple(v, "storage view")?;
                        let (&off, &size) = v
                            .get(1)
                            .zip(v.get(2))
                            .ok_or("storage view needs (key, offset, size)")?;
                        Some((
                            self.uint(off, "storage view offset")?,
                            self.uint(size, "storage view size")?,
                        ))
                    }
                    _ => None,
                };
                Ok(Obj::Storage(StorageRef {
                    class,
                    dtype,
                    elem_size,
                    key,
                    numel,
                    view,
                }))
            }
            "module" => Ok(Obj::Opaque(self.class_name(field(1)?))),
            other => Err(format!("unknown persistent id type `{other}`")),
        }
    }
}

fn printable(op: u8) -> String {
    if op.is_ascii_graphic() {
        format!(" ('{}')", op as char)
    } else {
        String::new()
    }
}

/// Element type and size of a torch storage class (`torch.FloatStorage`, ...). Complex and
/// quantized storages have a size but no readable dtype.
fn storage_class(class: &str) -> Option<(Option<StoredDType>, usize)> {
    let name = class
        .strip_prefix("torch.cuda.")
        .or_else(|| class.strip_prefix("torch.storage."))
        .or_else(|| class.strip_prefix("torch."))?;
    Some(match name {
        "UntypedStorage" | "ByteStorage" => (Some(StoredDType::U8), 1),
        "FloatStorage" => (Some(StoredDType::F32), 4),
        "DoubleStorage" => (Some(StoredDType::F64), 8),
        "HalfStorage" => (Some(StoredDType::F16), 2),
        "BFloat16Storage" => (Some(StoredDType::BF16), 2),
        "LongStorage" => (Some(StoredDType::I64), 8),
        "IntStorage" => (Some(StoredDType::I32), 4),
        "ShortStorage" => (Some(StoredDType::I16), 2),
        "CharStorage" => (Some(StoredDType::I8), 1),
        "BoolStorage" => (Some(StoredDType::Bool), 1),
        "ComplexFloatStorage" => (None, 8),
        "ComplexDoubleStorage" => (None, 16),
        "QInt8Storage" | "QUInt8Storage" | "QUInt4x2Storage" | "QUInt2x4Storage" => (None, 1),
        "QInt32Storage" => (None, 4),
        _ => return None,
    })
}

/// Element type of a torch dtype by name (`float32`, `uint16`, ...), as passed to
/// `_rebuild_tensor_v3`.
fn dtype_from_torch_name(name: &str) -> Option<StoredDType> {
    Some(match name {
        "float32" | "float" => StoredDType::F32,
        "float64" | "double" => StoredDType::F64,
        "float16" | "half" => StoredDType::F16,
        "bfloat16" => StoredDType::BF16,
        "int64" | "long" => StoredDType::I64,
        "int32" | "int" => StoredDType::I32,
        "int16" | "short" => StoredDType::I16,
        "int8" => StoredDType::I8,
        "uint8" => StoredDType::U8,
        "bool" => StoredDType::Bool,
        "uint16" => StoredDType::U16,
        "uint32" => StoredDType::U32,
        "uint64" => StoredDType::U64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(data: &[u8]) -> (Pickle, Id) {
        let p = parse(data, 0).unwrap();
        let r = p.root;
        (p, r)
    }

    #[test]
    fn memo_keeps_reference_semantics() {
        // d = {}; memo[0] = d; d["a"] = 1; then [memo[0], memo[0]]: the memoised dict must
        // be the one filled after it was memoised.
        let (p, r) = root(b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s]q\x01(h\x00h\x00e.");
        let Obj::List(items) = p.get(r) else {
            panic!("not a list")
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[0], items[1]);
        let a = p.dict_get(items[0], "a").unwrap();
        assert!(matches!(p.get(a), Obj::Int(1)));
    }

    #[test]
    fn globals_are_never_called() {
        // os.system("echo pwned") as a REDUCE: becomes an opaque value named after the callable.
        let (p, r) = root(b"\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo pwned\x85R.");
        assert!(matches!(p.get(r), Obj::Opaque(n) if n == "os.system"));
    }

    #[test]
    fn rebuilds_tensor_with_strides_and_offset() {
        let data = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x003X\x03\x00\x00\x00cpuK\x0ctQK\x02K\x03K\x02\x86K\x01K\x03\x86\x89ccollections\nOrderedDict\n)RtR.";
        let (p, r) = root(data);
        let Obj::Tensor(t) = p.get(r) else {
            panic!("not a tensor: {:?}", p.get(r))
        };
        assert_eq!(t.storage.key, "3");
        assert_eq!(t.storage.numel, 12);
        assert_eq!(t.dtype, Ok(StoredDType::F16));
        assert_eq!(
            (t.offset, t.shape.as_slice(), t.strides.as_slice()),
            (2, &[3, 2][..], &[1, 3][..])
        );
    }

    #[test]
    fn wide_and_negative_ints() {
        let (p, r) = root(b"\x80\x02(J\xfe\xff\xff\xff\x8a\x02\x00\x80\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19t.");
        let Obj::Tuple(v) = p.get(r) else { panic!() };
        assert!(matches!(p.get(v[0]), Obj::Int(-2)));
        assert!(matches!(p.get(v[1]), Obj::Int(-32768)));
        assert!(matches!(p.get(v[2]), Obj::BigInt(b) if b.len() == 10));
    }

    #[test]
    fn unsupported_opcode_reports_offset() {
        let e = parse(b"\x80\x02]\xff.", 0).err().unwrap();
        assert_eq!(e.offset, 3);
        assert!(e.msg.contains("0xff"), "{}", e.msg);
    }

    #[test]
    fn truncation_reports_offset() {
        let e = parse(b"\x80\x02X\x10\x00\x00\x00abc", 0).err().unwrap();
        assert_eq!(e.offset, 2);
        assert!(e.msg.contains("truncated"), "{}", e.msg);
        let e = parse(b"\x80\x02]", 0).err().unwrap();
        assert_eq!(e.offset, 3, "missing STOP is reported at the end");
    }

    #[test]
    fn malformed_stack_use_is_an_error() {
        for bad in [&b"."[..], b"(.", b"K\x01K\x02s.", b"}h\x05.", b"0"] {
            assert!(parse(bad, 0).is_err(), "{bad:?}");
        }
    }
}
