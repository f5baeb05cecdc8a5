//! The `evm-call` target's pure logic: calldata from an item's fields, the "already done" view
//! check, and revert classification. No RPC and no store, so every rule here is unit-tested.
//!
//! A target's declarations are parsed once, by [`CallPlan::new`], which holds every rule of the
//! `evm-call` kind and reports each problem with its key; config resolution calls it, and the
//! engine receives the plan.

use std::cmp::Ordering;

use alloy::dyn_abi::{DynSolType, DynSolValue, ErrorExt, FunctionExt, JsonAbiExt, Specifier};
use alloy::json_abi::{Error as AbiError, Function, Param};
use alloy::primitives::{Bytes, hex};
use alloy::sol_types::{Panic, PanicKind, Revert as SolRevert, SolError};
use serde_json::{Map, Value};

use super::{DeclProblem, bad_param_type, one_line, preview};

/// How much of an unknown custom error's arguments a message shows.
const PREVIEW_BYTES: usize = 64;

/// One evm-call target, parsed once.
#[derive(Debug, Clone)]
pub struct CallPlan {
    function: Function,
    args: Vec<Arg>,
    view: Option<View>,
    already_there: Vec<AbiError>,
    /// Declared errors that name a failure (not "already there").
    errors: Vec<AbiError>,
}

#[derive(Debug, Clone)]
struct Arg {
    param: String,
    ty: DynSolType,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Field(String),
    /// Coerced when the plan is built, so a bad literal fails at start-up, not per item.
    Literal(DynSolValue),
}

#[derive(Debug, Clone)]
struct View {
    function: Function,
    params: Vec<(String, DynSolType)>,
    output: DynSolType,
    op: &'static str,
    operand: String,
}

/// Whether comparison `op` accepts `ord`; `None` stands for unequal values with no order (two
/// different roots), which only `!=` accepts.
fn holds(op: &str, ord: Option<Ordering>) -> bool {
    match (op, ord) {
        ("!=", ord) => ord != Some(Ordering::Equal),
        ("==", Some(o)) => o.is_eq(),
        (">=", Some(o)) => o.is_ge(),
        ("<=", Some(o)) => o.is_le(),
        (">", Some(o)) => o.is_gt(),
        ("<", Some(o)) => o.is_lt(),
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("the item has no field `{field}` for parameter `{param}`")]
    MissingField { field: String, param: String },
    #[error("field `{field}` for parameter `{param}` is not a `{ty}`: {value} ({reason})")]
    BadField { field: String, param: String, ty: String, value: String, reason: String },
    #[error("comparison operand `{operand}` is not a `{ty}`: {value} ({reason})")]
    BadOperand { operand: String, ty: String, value: String, reason: String },
    #[error("cannot encode a call to `{function}`: {reason}")]
    Encode { function: String, reason: String },
    #[error("the view `{view}` returned data that is not a `{ty}`: {reason}")]
    BadReturn { view: String, ty: String, reason: String },
    #[error("`{op}` needs an integer, and the view returns `{ty}` (use == or !=)")]
    OrderedCompare { op: String, ty: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revert {
    /// A configured "already there" error: the item is on the destination already. Holds e.g.
    /// `BatchAlreadyExists(7)`.
    AlreadyThere(String),
    /// Any other revert, decoded as far as possible, as a sentence for the operator.
    Failed(String),
}

/// An `evm-call` target as the config writes it, for [`CallPlan::new`].
#[derive(Debug, Clone, Copy)]
pub struct CallDecl<'a> {
    /// `function postBatch(uint64 height, bytes32 root)`.
    pub function: &'a str,
    /// Parameter name → where its value comes from.
    pub args: &'a [(String, ArgDecl<'a>)],
    pub already_done: Option<DoneDecl<'a>>,
    /// Error declarations of the contract, so that a failure names its error.
    pub errors: &'a [String],
}

/// One argument as written: an item field, a literal, or (wrongly) both or neither.
#[derive(Debug, Clone, Copy)]
pub struct ArgDecl<'a> {
    pub field: Option<&'a str>,
    pub value: Option<&'a Value>,
}

/// The "already done" check as written.
#[derive(Debug, Clone, Copy)]
pub struct DoneDecl<'a> {
    pub view: Option<&'a str>,
    pub compare: Option<&'a str>,
    pub revert_errors: &'a [String],
}

impl CallPlan {
    /// Parses a target's declarations, checks every rule of the kind, and coerces literals, so
    /// that a bad literal fails at start-up, not per item. Every problem is reported, each with
    /// its key relative to the target.
    pub fn new(decl: &CallDecl<'_>) -> Result<Self, Vec<DeclProblem>> {
        let mut problems = Vec::new();
        let function = parse_function(decl.function, "function", &mut problems);
        let mut args = Vec::new();
        if let Some(function) = &function {
            let params: Vec<String> = function.inputs.iter().map(|p| p.name.clone()).collect();
            for (param, ty) in named_params(function, "function", &mut problems) {
                let Some((_, arg)) = decl.args.iter().find(|(name, _)| *name == param) else {
                    problems.push(
                        DeclProblem::new(
                            "args",
                            format!("no argument for parameter `{param}` of `{}`", function.name),
                        )
                        .hint(format!("add `{param}: {{ field: {param} }}`")),
                    );
                    continue;
                };
                let source = match (arg.field, arg.value) {
                    (Some(field), None) => Source::Field(field.to_string()),
                    (None, Some(literal)) => match coerce_literal(&param, &ty, literal) {
                        Ok(value) => Source::Literal(value),
                        Err(message) => {
                            problems.push(DeclProblem::new(format!("args.{param}"), message));
                            continue;
                        }
                    },
                    _ => continue, // reported below, for every argument
                };
                args.push(Arg { param, ty, source });
            }
            for (name, _) in decl.args {
                if !params.contains(name) {
                    let mut problem = DeclProblem::new(
                        format!("args.{name}"),
                        format!("`{}` has no parameter `{name}`", function.name),
                    );
                    problem.candidates = params.iter().filter(|p| !p.is_empty()).cloned().collect();
                    problems.push(problem);
                }
            }
        }
        for (name, arg) in decl.args {
            if arg.field.is_some() == arg.value.is_some() {
                problems.push(DeclProblem::new(
                    format!("args.{name}"),
                    "set exactly one of `field` (from the item) or `value` (a literal)",
                ));
            }
        }
        let errors = parse_errors(decl.errors, "errors", &mut problems);
        let (view, already_there) = match &decl.already_done {
            Some(done) => {
                let view = match (done.view, done.compare) {
                    (Some(view), Some(compare)) => parse_view(view, compare, &mut problems),
                    (Some(_), None) => {
                        problems.push(DeclProblem::new(
                            "already_done",
                            "`view` needs `compare`, e.g. `>= height`",
                        ));
                        None
                    }
                    (None, Some(_)) => {
                        problems.push(DeclProblem::new("already_done", "`compare` needs `view`"));
                        None
                    }
                    (None, None) => {
                        if done.revert_errors.is_empty() {
                            problems.push(DeclProblem::new(
                                "already_done",
                                "empty: set `view` + `compare` and/or `revert_errors`",
                            ));
                        }
                        None
                    }
                };
                (view, parse_errors(done.revert_errors, "already_done.revert_errors", &mut problems))
            }
            None => (None, Vec::new()),
        };
        match function {
            Some(function) if problems.is_empty() => Ok(Self { function, args, view, already_there, errors }),
            _ => Err(problems),
        }
    }

    pub fn function_name(&self) -> &str {
        &self.function.name
    }

    /// ABI calldata (selector + encoded args) for an item. A `field` argument is the item field
    /// coerced to the parameter's type; a `value` argument is the literal coerced at start-up.
    /// Errors are permanent: this target cannot deliver the item.
    pub fn calldata(&self, fields: &Map<String, Value>) -> Result<Bytes, CallError> {
        let values = self
            .args
            .iter()
            .map(|arg| match &arg.source {
                Source::Field(field) => field_value(fields, field, &arg.param, &arg.ty),
                Source::Literal(value) => Ok(value.clone()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        encode(&self.function, &values)
    }

    /// Calldata of the configured already-done view for an item, `None` when no view is
    /// configured. The view's parameters are filled from item fields of the same name.
    pub fn done_view_calldata(&self, fields: &Map<String, Value>) -> Option<Result<Bytes, CallError>> {
        let view = self.view.as_ref()?;
        let values = view
            .params
            .iter()
            .map(|(name, ty)| field_value(fields, name, name, ty))
            .collect::<Result<Vec<_>, _>>();
        Some(values.and_then(|values| encode(&view.function, &values)))
    }

    /// The already-done view as `check-config --online` calls it once per chain: its signature,
    /// and calldata with the zero value of every parameter (a view is a read and must answer for
    /// any item — delivery asks it before every send, and one that reverts for an unknown item
    /// fails that item). `None` without a view.
    pub fn probe_view(&self) -> Option<(String, Result<Bytes, CallError>)> {
        let view = self.view.as_ref()?;
        let values: Option<Vec<DynSolValue>> = view.params.iter().map(|(_, ty)| zero_value(ty)).collect();
        let calldata = match values {
            Some(values) => encode(&view.function, &values),
            None => Err(CallError::Encode {
                function: view.function.signature(),
                reason: "a parameter type without a zero value".into(),
            }),
        };
        Some((view.function.signature(), calldata))
    }

    /// Whether the view's answer decodes as its declared return type.
    pub fn view_output_decodes(&self, returned: &[u8]) -> Result<(), CallError> {
        let Some(view) = &self.view else { return Ok(()) };
        view.function.abi_decode_output(returned).map(|_| ()).map_err(|e| CallError::BadReturn {
            view: view.function.name.clone(),
            ty: view.output.to_string(),
            reason: first_line(&e.to_string()),
        })
    }

    /// Judges the view's return data against `compare`; `Ok(true)` means already done, and so
    /// does nothing when no view is configured (`Ok(false)`). The operand is an item field when
    /// one has that name, else a literal. Integers compare numerically at 256 bits, so a
    /// `uint64` view compares with any field; other types support only `==` and `!=`, and a
    /// literal `0` there means the zero value (zero word, zero address, false, empty).
    pub fn judge_view(&self, returned: &[u8], fields: &Map<String, Value>) -> Result<bool, CallError> {
        let Some(view) = &self.view else { return Ok(false) };
        let bad_return = |reason: String| CallError::BadReturn {
            view: view.function.name.clone(),
            ty: view.output.to_string(),
            reason,
        };
        let got = view
            .function
            .abi_decode_output(returned)
            .map_err(|e| bad_return(first_line(&e.to_string())))?
            .into_iter()
            .next()
            .ok_or_else(|| bad_return("no value".into()))?;
        // Widened so that a field beyond the view's own width still compares instead of failing.
        let ty = match &view.output {
            DynSolType::Uint(_) => DynSolType::Uint(256),
            DynSolType::Int(_) => DynSolType::Int(256),
            other => other.clone(),
        };
        let bad_operand = |value: String, reason: String| CallError::BadOperand {
            operand: view.operand.clone(),
            ty: ty.to_string(),
            value: preview(&value),
            reason,
        };
        let want = match fields.get(&view.operand) {
            Some(value) => Some(coerce(&ty, value).map_err(|reason| bad_operand(value.to_string(), reason))?),
            None if view.operand == "0" && !matches!(ty, DynSolType::Uint(_) | DynSolType::Int(_)) => None,
            None => Some(
                coerce_text(&ty, &view.operand)
                    .map_err(|reason| bad_operand(view.operand.clone(), reason))?,
            ),
        };
        let ord = match (&got, want) {
            (DynSolValue::Uint(a, _), Some(DynSolValue::Uint(b, _))) => Some(a.cmp(&b)),
            (DynSolValue::Int(a, _), Some(DynSolValue::Int(b, _))) => Some(a.cmp(&b)),
            (_, want) if matches!(view.op, "==" | "!=") => {
                let equal = want.map_or_else(|| is_zero(&got), |want| want == got);
                equal.then_some(Ordering::Equal)
            }
            _ => return Err(CallError::OrderedCompare { op: view.op.into(), ty: ty.to_string() }),
        };
        Ok(holds(view.op, ord))
    }

    /// Classifies revert data (the bytes from an eth_call / eth_estimateGas error's `data`).
    pub fn classify_revert(&self, data: &[u8]) -> Revert {
        let Some((selector, args)) = data.split_first_chunk::<4>() else {
            return Revert::Failed(if data.is_empty() {
                "reverted without a reason".into()
            } else {
                format!("reverted with malformed data 0x{}", hex::encode(data))
            });
        };
        if *selector == SolRevert::SELECTOR {
            return Revert::Failed(match SolRevert::abi_decode(data) {
                Ok(revert) => format!("reverted: {}", preview(&revert.reason)),
                Err(_) => format!("reverted with a malformed Error(string): {}", hex_preview(args)),
            });
        }
        if *selector == Panic::SELECTOR {
            return Revert::Failed(match Panic::abi_decode(data) {
                Ok(panic) => {
                    let kind = panic.kind().map_or("unknown code", PanicKind::as_str);
                    format!("panic {:#04x} ({kind})", panic.code)
                }
                Err(_) => format!("reverted with a malformed Panic(uint256): {}", hex_preview(args)),
            });
        }
        if let Some(error) = self.already_there.iter().find(|e| e.selector() == *selector) {
            // A matching selector with undecodable arguments is not trusted as "already there":
            // wrongly skipping an item would lose it, while a failure is retried and visible.
            return match error.decode_error(data) {
                Ok(decoded) => Revert::AlreadyThere(format!("{}({})", error.name, show_list(&decoded.body))),
                Err(_) => {
                    Revert::Failed(format!("{} with malformed arguments {}", error.name, hex_preview(args)))
                }
            };
        }
        if let Some(error) = self.errors.iter().find(|e| e.selector() == *selector) {
            return Revert::Failed(match error.decode_error(data) {
                Ok(decoded) => format!("reverted: {}({})", error.name, show_list(&decoded.body)),
                Err(_) => format!("reverted: {} with malformed arguments {}", error.name, hex_preview(args)),
            });
        }
        let mut message = format!("custom error 0x{}", hex::encode(selector));
        if !args.is_empty() {
            message.push_str(&format!(" with arguments {}", hex_preview(args)));
        }
        Revert::Failed(message)
    }
}

/// Error declarations; each one that does not parse is a problem at `key[i]`.
fn parse_errors(decls: &[String], key: &str, problems: &mut Vec<DeclProblem>) -> Vec<AbiError> {
    let mut out = Vec::new();
    for (i, decl) in decls.iter().enumerate() {
        let parsed = AbiError::parse(decl.trim()).map_err(|e| one_line(&e.to_string())).and_then(|e| {
            match bad_param_type(e.inputs.iter().map(|p| p.selector_type())) {
                Some(ty) => Err(format!("`{ty}` is not a Solidity type")),
                None => Ok(e),
            }
        });
        match parsed {
            Ok(error) => out.push(error),
            Err(e) => problems.push(
                DeclProblem::new(format!("{key}[{i}]"), format!("not a Solidity error declaration: {e}"))
                    .hint("write e.g. `error BatchAlreadyExists(uint64 height)`"),
            ),
        }
    }
    out
}

/// A function declaration whose parameter types are all Solidity types.
fn parse_function(decl: &str, key: &str, problems: &mut Vec<DeclProblem>) -> Option<Function> {
    match Function::parse(decl.trim()) {
        Ok(function) => match bad_param_type(function.inputs.iter().map(|p| p.selector_type())) {
            Some(ty) => {
                problems.push(DeclProblem::new(key, format!("`{ty}` is not a Solidity type")));
                None
            }
            None => Some(function),
        },
        Err(e) => {
            problems.push(
                DeclProblem::new(
                    key,
                    format!("not a Solidity function declaration: {}", one_line(&e.to_string())),
                )
                .hint("write e.g. `function postBatch(uint64 height, bytes32 root)`"),
            );
            None
        }
    }
}

/// Parameters by name with their resolved types; every one needs a name to take a value by.
fn named_params(
    function: &Function,
    key: &str,
    problems: &mut Vec<DeclProblem>,
) -> Vec<(String, DynSolType)> {
    let mut out = Vec::new();
    for param in &function.inputs {
        let Some(ty) = resolve(param, key, problems) else { continue };
        if param.name.is_empty() {
            problems.push(DeclProblem::new(
                key,
                format!("parameter of type {} has no name to map an argument to", param.ty),
            ));
            continue;
        }
        out.push((param.name.clone(), ty));
    }
    out
}

fn resolve(param: &Param, key: &str, problems: &mut Vec<DeclProblem>) -> Option<DynSolType> {
    match param.resolve() {
        Ok(ty) => Some(ty),
        Err(e) => {
            problems.push(DeclProblem::new(key, format!("`{}`: {}", param.ty, one_line(&e.to_string()))));
            None
        }
    }
}

fn parse_view(decl: &str, compare: &str, problems: &mut Vec<DeclProblem>) -> Option<View> {
    const KEY: &str = "already_done.view";
    let function = parse_function(decl, KEY, problems);
    let op_and_operand = parse_compare(compare);
    if op_and_operand.is_none() {
        problems.push(
            DeclProblem::new("already_done.compare", format!("`{}` is not a comparison", preview(compare)))
                .hint("write an operator and an item field, e.g. `>= height`"),
        );
    }
    let function = function?;
    let params = named_params(&function, KEY, problems);
    let [output] = function.outputs.as_slice() else {
        problems.push(
            DeclProblem::new(KEY, "the view must return exactly one value")
                .hint("e.g. `function lastBatchHeight() view returns (uint64)`"),
        );
        return None;
    };
    let output = resolve(output, KEY, problems)?;
    let (op, operand) = op_and_operand?;
    Some(View { function, params, output, op, operand: operand.to_string() })
}

/// `>= height` → (operator, field or literal).
fn parse_compare(s: &str) -> Option<(&'static str, &str)> {
    let s = s.trim();
    let op = ["==", "!=", ">=", "<=", ">", "<"].into_iter().find(|op| s.starts_with(op))?;
    let operand = s[op.len()..].trim();
    let valid =
        !operand.is_empty() && operand.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    valid.then_some((op, operand))
}

/// The zero value of a type (0, the zero address, false, empty), for calls that need any value.
fn zero_value(ty: &DynSolType) -> Option<DynSolValue> {
    Some(match ty {
        DynSolType::Bool => DynSolValue::Bool(false),
        DynSolType::Int(bits) => DynSolValue::Int(Default::default(), *bits),
        DynSolType::Uint(bits) => DynSolValue::Uint(Default::default(), *bits),
        DynSolType::FixedBytes(n) => DynSolValue::FixedBytes(Default::default(), *n),
        DynSolType::Address => DynSolValue::Address(Default::default()),
        DynSolType::Bytes => DynSolValue::Bytes(Vec::new()),
        DynSolType::String => DynSolValue::String(String::new()),
        DynSolType::Array(_) => DynSolValue::Array(Vec::new()),
        DynSolType::FixedArray(inner, n) => DynSolValue::FixedArray(vec![zero_value(inner)?; *n]),
        DynSolType::Tuple(types) => DynSolValue::Tuple(types.iter().map(zero_value).collect::<Option<_>>()?),
        _ => return None,
    })
}

fn encode(function: &Function, values: &[DynSolValue]) -> Result<Bytes, CallError> {
    function.abi_encode_input(values).map(Bytes::from).map_err(|e| CallError::Encode {
        function: function.name.clone(),
        reason: first_line(&e.to_string()),
    })
}

fn field_value(
    fields: &Map<String, Value>,
    field: &str,
    param: &str,
    ty: &DynSolType,
) -> Result<DynSolValue, CallError> {
    let value = fields
        .get(field)
        .ok_or_else(|| CallError::MissingField { field: field.into(), param: param.into() })?;
    coerce(ty, value).map_err(|reason| CallError::BadField {
        field: field.into(),
        param: param.into(),
        ty: ty.to_string(),
        value: preview(&value.to_string()),
        reason,
    })
}

/// A literal follows the same rules as an item field.
fn coerce_literal(param: &str, ty: &DynSolType, literal: &Value) -> Result<DynSolValue, String> {
    coerce(ty, literal).map_err(|reason| {
        format!(
            "the literal for parameter `{param}` is not a `{ty}`: {} ({reason})",
            preview(&literal.to_string())
        )
    })
}

/// A JSON value as a value of `ty`: strings through `coerce_str`, numbers and bools through
/// their text, arrays element by element (tuples too, as decoded events render them as arrays).
fn coerce(ty: &DynSolType, value: &Value) -> Result<DynSolValue, String> {
    let elements = |inner: &mut dyn Iterator<Item = &DynSolType>, items: &[Value]| {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match inner.next() {
                Some(ty) => coerce(ty, item).map_err(|e| format!("element {i}: {e}")),
                None => Err(format!("element {i}: one too many")),
            })
            .collect::<Result<Vec<_>, _>>()
    };
    match (ty, value) {
        (DynSolType::Array(inner), Value::Array(items)) => {
            elements(&mut std::iter::repeat(inner.as_ref()), items).map(DynSolValue::Array)
        }
        (DynSolType::FixedArray(inner, len), Value::Array(items)) if items.len() == *len => {
            elements(&mut std::iter::repeat(inner.as_ref()), items).map(DynSolValue::FixedArray)
        }
        (DynSolType::Tuple(types), Value::Array(items)) if items.len() == types.len() => {
            elements(&mut types.iter(), items).map(DynSolValue::Tuple)
        }
        (DynSolType::Bool, Value::Bool(b)) => Ok(DynSolValue::Bool(*b)),
        (_, Value::String(text)) => coerce_text(ty, text),
        // YAML reads an unquoted `0x11` as the number 17, which would silently become `0x17`.
        (DynSolType::Address | DynSolType::FixedBytes(_) | DynSolType::Bytes, Value::Number(_)) => {
            Err("a number; write bytes and addresses as quoted 0x… strings".into())
        }
        (_, Value::Number(n)) if n.is_u64() || n.is_i64() => coerce_text(ty, &n.to_string()),
        // Floats lose digits past 2^53; quoting keeps big integers exact.
        (_, Value::Number(_)) => Err("a fractional or very large number; quote it as a string".into()),
        (_, Value::Bool(b)) => coerce_text(ty, &b.to_string()),
        (_, Value::Array(items)) => Err(format!("an array of {} elements", items.len())),
        (_, Value::Null) => Err("null".into()),
        (_, Value::Object(_)) => Err("an object".into()),
    }
}

/// Text as a value of `ty`. A `string` parameter takes the text as it is: `coerce_str` would
/// trim it and strip quotes, changing what the item said.
fn coerce_text(ty: &DynSolType, text: &str) -> Result<DynSolValue, String> {
    match ty {
        DynSolType::String => Ok(DynSolValue::String(text.to_string())),
        _ => ty.coerce_str(text).map_err(|e| parser_reason(&e.to_string())),
    }
}

fn is_zero(value: &DynSolValue) -> bool {
    match value {
        DynSolValue::FixedBytes(word, _) => word.is_zero(),
        DynSolValue::Address(address) => address.is_zero(),
        DynSolValue::Bool(b) => !b,
        DynSolValue::Bytes(bytes) => bytes.is_empty(),
        DynSolValue::String(s) => s.is_empty(),
        DynSolValue::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// A decoded value as an operator reads it: `BatchAlreadyExists(7)`, not ABI words.
fn show(value: &DynSolValue) -> String {
    match value {
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::Address(a) => a.to_checksum(None),
        DynSolValue::FixedBytes(word, size) => format!("0x{}", hex::encode(&word[..*size])),
        DynSolValue::Bytes(bytes) => hex_preview(bytes),
        DynSolValue::String(s) => format!("{:?}", preview(s)),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => format!("[{}]", show_list(items)),
        DynSolValue::Tuple(items) => format!("({})", show_list(items)),
        #[allow(unreachable_patterns)]
        other => preview(&format!("{other:?}")),
    }
}

fn show_list(values: &[DynSolValue]) -> String {
    preview(&values.iter().map(show).collect::<Vec<_>>().join(", "))
}

fn hex_preview(bytes: &[u8]) -> String {
    let more = if bytes.len() > PREVIEW_BYTES { "…" } else { "" };
    format!("0x{}{more}", hex::encode(&bytes[..bytes.len().min(PREVIEW_BYTES)]))
}

/// `coerce_str` errors read "parser error:", the input, a caret line, then the reason; the
/// reason is what an operator needs, and the input is already in the message.
fn parser_reason(text: &str) -> String {
    let lines = text.lines().skip_while(|line| !line.trim_start().starts_with('^')).skip(1);
    let reason = lines.map(str::trim).collect::<Vec<_>>().join(" ");
    if reason.is_empty() { "invalid syntax".into() } else { preview(&reason) }
}

/// Parser errors span lines with carets; the first line says what went wrong.
fn first_line(text: &str) -> String {
    preview(text.lines().next().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{B256, I256, U256, keccak256};
    use alloy::sol_types::{SolCall, SolValue};
    use serde_json::json;

    use super::*;

    alloy::sol! {
        function postBatch(uint64 height, bytes32 root);
        function setFee(uint256 fee, address to, bool on, string note);
        function register(address who, bool ok, uint8[] ids);
        function getRoot(uint64 height) view returns (bytes32);
        error BatchAlreadyExists(uint64 height);
    }

    const ROOT: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";
    const POST: &str = "function postBatch(uint64 height, bytes32 root)";
    const POST_ARGS: &str = "height: { field: height }, root: { field: root }";

    /// A plan from YAML snippets, as a config would hold them, resolved as the config does.
    fn plan(function: &str, args: &str, done: &str) -> Result<CallPlan, Vec<DeclProblem>> {
        let yaml = format!("function: '{function}'\nargs: {{ {args} }}\nchains: {{}}\nalready_done: {done}");
        let target: crate::config::EvmCallTarget =
            serde_json::from_value(crate::config::load::yaml_value(&yaml).expect("YAML"))
                .expect("test target");
        let args = target.arg_decls();
        CallPlan::new(&target.call_decl(&args))
    }

    /// A plan whose already-done view is `decl` judged by `compare`.
    fn viewing(decl: &str, compare: &str) -> CallPlan {
        plan(POST, POST_ARGS, &format!("{{ view: '{decl}', compare: '{compare}' }}")).expect("plan")
    }

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn comparisons() {
        assert_eq!(parse_compare(">= height"), Some((">=", "height")));
        assert_eq!(parse_compare("== batch.root"), Some(("==", "batch.root")));
        assert_eq!(parse_compare("height"), None);
        assert_eq!(parse_compare(">="), None);
    }

    #[test]
    fn every_problem_of_a_target_is_reported_with_its_key() {
        let done = "{ view: 'function last() view returns (uint64, uint64)', compare: 'height' }";
        let args = "height: { field: height, value: 1 }, hieght: { field: height }";
        let problems = plan(POST, args, done).expect_err("broken");
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["args", "args.hieght", "args.height", "already_done.compare", "already_done.view"],
            "{problems:?}"
        );
        assert_eq!(problems[1].candidates, ["height", "root"]);
    }

    #[test]
    fn calldata_matches_solidity_encoding() {
        let p = plan(POST, POST_ARGS, "null").expect("plan");
        let data = p.calldata(&fields(json!({ "height": "7", "root": ROOT }))).expect("calldata");
        let root: B256 = ROOT.parse().expect("root");
        assert_eq!(data.as_ref(), postBatchCall { height: 7, root }.abi_encode());
        let mut by_hand = keccak256("postBatch(uint64,bytes32)")[..4].to_vec();
        by_hand.extend((7u64, root).abi_encode_params());
        assert_eq!(data.as_ref(), by_hand);
    }

    #[test]
    fn literals_are_coerced_once() {
        let to = "0x000000000000000000000000000000000000dEaD";
        let decl = "function setFee(uint256 fee, address to, bool on, string note)";
        let args = format!(
            "fee: {{ value: 1000 }}, to: {{ value: '{to}' }}, on: {{ value: true }}, note: {{ value: ' as is ' }}"
        );
        let data = plan(decl, &args, "null").expect("plan").calldata(&Map::new()).expect("calldata");
        let call = setFeeCall {
            fee: U256::from(1000),
            to: to.parse().expect("to"),
            on: true,
            note: " as is ".into(),
        };
        assert_eq!(data.as_ref(), call.abi_encode());

        let err = plan(decl, &args.replace("1000", "-1"), "null").expect_err("negative uint");
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(err[0].key, "args.fee");
        assert!(err[0].message.starts_with("the literal for parameter `fee` is not a `uint256`"), "{err:?}");
        // Unquoted YAML hex is a number; taking it would encode 0x11 as 0x17.
        let err = plan("function f(bytes1 b)", "b: { value: 0x11 }", "null").expect_err("unquoted hex");
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(err[0].key, "args.b");
        assert!(err[0].message.contains("quoted 0x"), "{err:?}");
    }

    #[test]
    fn missing_and_overflowing_fields_are_errors() {
        let p = plan(POST, POST_ARGS, "null").expect("plan");
        let err = p.calldata(&fields(json!({ "root": ROOT }))).expect_err("missing");
        assert_eq!(err, CallError::MissingField { field: "height".into(), param: "height".into() });
        assert_eq!(err.to_string(), "the item has no field `height` for parameter `height`");

        let err =
            p.calldata(&fields(json!({ "height": "18446744073709551616", "root": ROOT }))).expect_err("big");
        assert!(matches!(&err, CallError::BadField { field, ty, .. } if field == "height" && ty == "uint64"));
        assert!(err.to_string().ends_with("(number too large to fit in target type)"), "{err}");
        assert!(p.calldata(&fields(json!({ "height": "18446744073709551615", "root": ROOT }))).is_ok());

        let long = json!({ "height": "7", "root": format!("0x{}", "ab".repeat(500)) });
        let message = p.calldata(&fields(long)).expect_err("long").to_string();
        assert!(message.len() < 300, "{message}");
    }

    #[test]
    fn address_bool_and_array_params() {
        let decl = "function register(address who, bool ok, uint8[] ids)";
        let p =
            plan(decl, "who: { field: who }, ok: { field: ok }, ids: { field: ids }", "null").expect("plan");
        let who = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        let data =
            p.calldata(&fields(json!({ "who": who, "ok": true, "ids": ["1", 2, "255"] }))).expect("data");
        let call = registerCall { who: who.parse().expect("address"), ok: true, ids: vec![1, 2, 255] };
        assert_eq!(data.as_ref(), call.abi_encode());

        let err =
            p.calldata(&fields(json!({ "who": who, "ok": true, "ids": ["1", "256"] }))).expect_err("u8");
        assert!(
            matches!(&err, CallError::BadField { reason, .. } if reason.starts_with("element 1")),
            "{err}"
        );
        let err = p.calldata(&fields(json!({ "who": who, "ok": true, "ids": "1" }))).expect_err("not array");
        assert!(matches!(&err, CallError::BadField { param, ty, .. } if param == "ids" && ty == "uint8[]"));
    }

    #[test]
    fn view_with_params() {
        let p = viewing("function getRoot(uint64 height) view returns (bytes32)", "!= 0");
        let item = fields(json!({ "height": "7", "root": ROOT }));
        let data = p.done_view_calldata(&item).expect("configured").expect("calldata");
        assert_eq!(data.as_ref(), getRootCall { height: 7 }.abi_encode());
        assert!(!p.judge_view(&B256::ZERO.abi_encode(), &item).expect("judge"));
        assert!(p.judge_view(&B256::repeat_byte(1).abi_encode(), &item).expect("judge"));
        assert!(p.done_view_calldata(&Map::new()).expect("configured").is_err());

        let p = viewing("function getRoot(uint64 height) view returns (bytes32)", "== root");
        assert!(p.judge_view(&B256::repeat_byte(0x11).abi_encode(), &item).expect("judge"));
        assert!(!p.judge_view(&B256::repeat_byte(0x12).abi_encode(), &item).expect("judge"));
        assert!(p.judge_view(&[], &item).is_err(), "no code at the address");

        let p = viewing("function getRoot(uint64 height) view returns (bytes32)", ">= root");
        let err = p.judge_view(&B256::ZERO.abi_encode(), &item).expect_err("ordered bytes32");
        assert_eq!(err, CallError::OrderedCompare { op: ">=".into(), ty: "bytes32".into() });
    }

    #[test]
    fn view_without_params_and_every_operator() {
        let view = "function lastBatchHeight() view returns (uint64)";
        assert!(plan(POST, POST_ARGS, "null").expect("plan").done_view_calldata(&Map::new()).is_none());
        let data = viewing(view, ">= height").done_view_calldata(&Map::new()).expect("view").expect("data");
        assert_eq!(data.as_ref(), &keccak256("lastBatchHeight()")[..4]);

        let returned = 7u64.abi_encode();
        let cases = [
            (">= height", [true, true, false]),
            ("<= height", [false, true, true]),
            ("> height", [true, false, false]),
            ("< height", [false, false, true]),
            ("== height", [false, true, false]),
            ("!= height", [true, false, true]),
        ];
        for (compare, expected) in cases {
            let p = viewing(view, compare);
            for (height, want) in ["6", "7", "8"].into_iter().zip(expected) {
                let got = p.judge_view(&returned, &fields(json!({ "height": height }))).expect("judge");
                assert_eq!(got, want, "{compare} with view 7 and height {height}");
            }
        }
        // A literal operand, and a field that is a JSON number.
        assert!(viewing(view, "> 6").judge_view(&returned, &Map::new()).expect("judge"));
        assert!(!viewing(view, "> 7").judge_view(&returned, &Map::new()).expect("judge"));
        assert!(viewing(view, "== n").judge_view(&returned, &fields(json!({ "n": 7 }))).expect("judge"));
    }

    #[test]
    fn wide_and_signed_integers_compare_numerically() {
        let big = U256::from(1u8) << 200usize;
        let need = |n: U256| fields(json!({ "need": n.to_string() }));
        let p = viewing("function total() view returns (uint256)", ">= need");
        assert!(p.judge_view(&big.abi_encode(), &need(big)).expect("judge"));
        assert!(!p.judge_view(&big.abi_encode(), &need(big + U256::from(1))).expect("judge"));
        // A uint64 view against a field beyond u64 compares rather than failing.
        let p = viewing("function lastBatchHeight() view returns (uint64)", "< need");
        assert!(p.judge_view(&7u64.abi_encode(), &need(big)).expect("judge"));

        let p = viewing("function delta() view returns (int256)", "< 0");
        assert!(p.judge_view(&I256::try_from(-5).expect("int").abi_encode(), &Map::new()).expect("judge"));
        assert!(!p.judge_view(&I256::try_from(5).expect("int").abi_encode(), &Map::new()).expect("judge"));

        let p = viewing("function done(uint64 height) view returns (bool)", "== true");
        assert!(p.judge_view(&true.abi_encode(), &Map::new()).expect("judge"));
        assert!(!p.judge_view(&false.abi_encode(), &Map::new()).expect("judge"));
    }

    #[test]
    fn classifies_reverts() {
        let done = "{ revert_errors: ['error BatchAlreadyExists(uint64 height)'] }";
        let p = plan(POST, POST_ARGS, done).expect("plan");
        let reason = SolRevert::from("EmptyRoot: root is zero").abi_encode();
        assert_eq!(p.classify_revert(&reason), Revert::Failed("reverted: EmptyRoot: root is zero".into()));
        let panic = Panic::from(PanicKind::UnderOverflow).abi_encode();
        let overflow = "panic 0x11 (arithmetic underflow or overflow)";
        assert_eq!(p.classify_revert(&panic), Revert::Failed(overflow.into()));
        let exists = BatchAlreadyExists { height: 7 }.abi_encode();
        assert_eq!(p.classify_revert(&exists), Revert::AlreadyThere("BatchAlreadyExists(7)".into()));
        let truncated = p.classify_revert(&exists[..20]);
        assert!(matches!(truncated, Revert::Failed(m) if m.starts_with("BatchAlreadyExists with malformed")));
        assert_eq!(p.classify_revert(&[]), Revert::Failed("reverted without a reason".into()));

        // The same error, unconfigured, is only a custom error.
        let other = plan(POST, POST_ARGS, "null").expect("plan");
        let args = format!("{}07", "0".repeat(62));
        let expected = format!("custom error 0x{} with arguments 0x{args}", hex::encode(&exists[..4]));
        assert_eq!(other.classify_revert(&exists), Revert::Failed(expected));

        // Declared as an error of the contract (not "already there"): a failure that names it.
        let named =
            plan(POST, POST_ARGS, "null\nerrors: ['error BatchAlreadyExists(uint64 height)']").expect("plan");
        assert_eq!(named.classify_revert(&exists), Revert::Failed("reverted: BatchAlreadyExists(7)".into()));
    }
}
