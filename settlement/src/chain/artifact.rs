//! A compiled contract as `settlement/contracts/build.js` writes it: creation code, runtime
//! code, and where the constructor writes each `immutable` into the runtime code.
//!
//! ```text
//!  <Name>.json ──parse──▶ Artifact ──creation_code(constructor args)──▶ a deployment's input
//!                                  └─runtime_code([(name, word)…])────▶ the code a chain holds
//! ```
//!
//! # Format
//!
//! The fields read here (docs/SETTLEMENT.md, "Contract"):
//!
//! ```text
//! { "bytecode": "0x…", "deployedBytecode": "0x…",
//!   "immutableReferences": { "<name>": [ { "start": <byte offset>, "length": 32 }, … ], … } }
//! ```
//!
//! solc keys immutable references by the immutable's AST id, which moves whenever a source
//! changes; build.js keys them by the immutable's name, so a contract with several
//! immutables gets each value at its own ranges.
//!
//! # Invariants
//!
//! [`Artifact::parse`] is the only constructor and checks every range: 32 bytes, inside the
//! runtime code, not overlapping another. [`Artifact::runtime_code`] then only refuses
//! values that do not match the immutables name for name.

use std::collections::BTreeMap;
use std::ops::Range;

use alloy::primitives::B256;

use super::ChainError;

/// A parsed contract artifact (see the module docs).
#[derive(Clone, Debug)]
pub struct Artifact {
    contract: &'static str,
    bytecode: Vec<u8>,
    deployed: Vec<u8>,
    immutables: BTreeMap<String, Vec<Range<usize>>>,
}

impl Artifact {
    /// Parses the artifact of `contract` (named in errors) from build.js's JSON.
    ///
    /// # Errors
    /// [`ChainError::Artifact`] if the JSON is not an artifact: not JSON, no code, or an
    /// immutable reference that is not a 32-byte word inside the runtime code or that
    /// overlaps another.
    pub fn parse(contract: &'static str, json: &str) -> Result<Artifact, ChainError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|source| ChainError::Artifact {
            contract,
            what: "it is not JSON".into(),
            source: Some(source),
        })?;
        let code = |key: &str| {
            value[key]
                .as_str()
                .and_then(|h| alloy::hex::decode(h).ok())
                .ok_or_else(|| broken(contract, format!("no {key}")))
        };
        let (bytecode, deployed) = (code("bytecode")?, code("deployedBytecode")?);
        let refs = value["immutableReferences"]
            .as_object()
            .ok_or_else(|| broken(contract, "no immutableReferences by name".into()))?;
        let mut immutables = BTreeMap::new();
        for (name, ranges) in refs {
            let ranges = ranges.as_array().ok_or_else(|| broken(contract, format!("immutable {name}: no ranges")))?;
            let ranges =
                ranges.iter().map(|r| word_range(contract, name, r, deployed.len())).collect::<Result<_, _>>()?;
            immutables.insert(name.clone(), ranges);
        }
        let artifact = Artifact { contract, bytecode, deployed, immutables };
        artifact.check_disjoint()?;
        Ok(artifact)
    }

    /// The creation code followed by `constructor_args` (ABI-encoded): a deployment's input.
    pub fn creation_code(&self, constructor_args: &[u8]) -> Vec<u8> {
        [self.bytecode.as_slice(), constructor_args].concat()
    }

    /// The runtime code with each immutable's value written at its ranges: what a chain holds
    /// after the constructor set those values. `values` names every immutable exactly once
    /// (a value is a 32-byte word: an address left-padded, an integer big-endian).
    ///
    /// # Errors
    /// [`ChainError::Artifact`] if an immutable has no value, a value names no immutable, or a
    /// name comes twice: the code and the artifact disagree (a broken build).
    pub fn runtime_code(&self, values: &[(&str, B256)]) -> Result<Vec<u8>, ChainError> {
        let mut code = self.deployed.clone();
        let mut seen = std::collections::BTreeSet::new();
        for &(name, word) in values {
            let ranges = self.immutables.get(name).ok_or_else(|| self.broken(format!("no immutable named {name}")))?;
            if !seen.insert(name) {
                return Err(self.broken(format!("two values for immutable {name}")));
            }
            for r in ranges {
                code[r.clone()].copy_from_slice(word.as_slice());
            }
        }
        if let Some(name) = self.immutables.keys().find(|n| !seen.contains(n.as_str())) {
            return Err(self.broken(format!("no value for immutable {name}")));
        }
        Ok(code)
    }

    /// Each immutable's byte ranges in the runtime code, by name.
    pub fn immutables(&self) -> &BTreeMap<String, Vec<Range<usize>>> {
        &self.immutables
    }

    /// Refuses two ranges that share a byte: filling one would overwrite the other.
    fn check_disjoint(&self) -> Result<(), ChainError> {
        let mut all: Vec<&Range<usize>> = self.immutables.values().flatten().collect();
        all.sort_by_key(|r| r.start);
        match all.windows(2).find(|w| w[0].end > w[1].start) {
            Some(w) => Err(self.broken(format!("immutable references {:?} and {:?} overlap", w[0], w[1]))),
            None => Ok(()),
        }
    }

    fn broken(&self, what: String) -> ChainError {
        broken(self.contract, what)
    }
}

/// One reference `{start, length}` of immutable `name`: a 32-byte word inside `code_len`.
fn word_range(
    contract: &'static str,
    name: &str,
    r: &serde_json::Value,
    code_len: usize,
) -> Result<Range<usize>, ChainError> {
    let field = |k: &str| r[k].as_u64().and_then(|n| usize::try_from(n).ok());
    match (field("start"), field("length")) {
        (Some(start), Some(32)) if start.checked_add(32).is_some_and(|end| end <= code_len) => Ok(start..start + 32),
        (Some(_), Some(32)) => Err(broken(contract, format!("immutable {name}: a reference past the code"))),
        _ => Err(broken(contract, format!("immutable {name}: a reference that is not a 32-byte word"))),
    }
}

/// A broken artifact (a broken build): `what` is missing or wrong.
fn broken(contract: &'static str, what: String) -> ChainError {
    ChainError::Artifact { contract, what, source: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An artifact with 70 bytes of runtime code and the references `refs`.
    fn json(refs: &str) -> String {
        let code = format!("0x{}", "ee".repeat(70));
        format!(r#"{{"bytecode": "0x6001", "deployedBytecode": "{code}", "immutableReferences": {refs}}}"#)
    }

    /// Immutable `a` at the reference `a` and at 38, `b` read nowhere in the runtime code.
    fn refs(a: &str) -> String {
        format!(r#"{{"a": [{a}, {{"start": 38, "length": 32}}], "b": []}}"#)
    }

    #[test]
    fn each_immutable_gets_its_own_value_at_its_own_ranges() {
        let art = Artifact::parse("T", &json(&refs(r#"{"start": 0, "length": 32}"#))).unwrap();
        let (a, b) = (B256::repeat_byte(0xaa), B256::repeat_byte(0xbb));
        let code = art.runtime_code(&[("b", b), ("a", a)]).unwrap();
        assert_eq!(&code[..32], a.as_slice());
        assert_eq!(&code[32..38], [0xee; 6]);
        assert_eq!(&code[38..], a.as_slice());
        assert_eq!(art.creation_code(&[1, 2]), [0x60, 0x01, 1, 2]);
        assert_eq!(art.immutables()["a"], [0..32, 38..70]);
    }

    #[test]
    fn values_must_match_the_immutables_name_for_name() {
        let art = Artifact::parse("T", &json(&refs(r#"{"start": 0, "length": 32}"#))).unwrap();
        let w = B256::ZERO;
        for (values, why) in [
            (vec![("a", w)], "no value for immutable b"),
            (vec![("a", w), ("b", w), ("c", w)], "no immutable named c"),
            (vec![("a", w), ("a", w), ("b", w)], "two values for immutable a"),
        ] {
            let err = art.runtime_code(&values).unwrap_err();
            assert_eq!(err.to_string(), format!("the T artifact: {why}"));
        }
    }

    #[test]
    fn a_reference_that_is_not_a_word_inside_the_code_or_overlaps_is_a_broken_artifact() {
        for (a, why) in [
            (r#"{"start": 0, "length": 20}"#, "immutable a: a reference that is not a 32-byte word"),
            (r#"{"start": 40, "length": 32}"#, "immutable a: a reference past the code"),
            (r#"{"start": 10, "length": 32}"#, "immutable references 10..42 and 38..70 overlap"),
            (r#"{"length": 32}"#, "immutable a: a reference that is not a 32-byte word"),
        ] {
            let err = Artifact::parse("T", &json(&refs(a))).unwrap_err();
            assert_eq!(err.to_string(), format!("the T artifact: {why}"), "{a}");
        }
        // The flat list of earlier artifacts has no names: refused, not filled blindly.
        let flat = json(r#"[{"start": 0, "length": 32}]"#);
        assert!(Artifact::parse("T", &flat).unwrap_err().to_string().contains("no immutableReferences by name"));
        assert!(Artifact::parse("T", "{").unwrap_err().to_string().contains("it is not JSON"));
    }
}
