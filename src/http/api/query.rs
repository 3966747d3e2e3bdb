//! The query string of a list, as amoCRM clients write it: `page`, `limit`, `with=a,b`,
//! `query`, `filter[…]` in PHP's bracket form (`filter[statuses][0][status_id]=142`,
//! `filter[id][]=1`, `filter[created_at][from]=…`) and `order[created_at]=desc`.
//!
//! One rule on every list: each handler takes the parameters it knows, and whatever is
//! left is refused with a 400 that names it (`finish`). A parameter sent twice keeps its
//! last value, as PHP does.

use std::future::{Ready, ready};
use std::str::FromStr;

use actix_web::{FromRequest, HttpRequest, dev::Payload};

use super::Paging;
use crate::domain::validation::FieldError;
use crate::http::problem::Problem;

/// One parameter: its name (`filter[statuses][0][status_id]`), the name's root
/// (`filter`) and bracketed segments (`statuses`, `0`, `status_id`), its value.
#[derive(Debug, Clone)]
struct Param {
    name: String,
    root: String,
    path: Vec<String>,
    value: String,
    taken: bool,
}

fn split_name(name: &str) -> (String, Vec<String>) {
    let Some(open) = name.find('[') else {
        return (name.to_owned(), Vec::new());
    };
    let root = name[..open].to_owned();
    let mut path = Vec::new();
    let mut rest = &name[open..];
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            // Not bracket form after all: the whole name is the root, and unknown.
            return (name.to_owned(), Vec::new());
        };
        path.push(inner[..close].to_owned());
        rest = &inner[close + 1..];
    }
    if !rest.is_empty() {
        return (name.to_owned(), Vec::new());
    }
    (root, path)
}

/// The parameters of a list request; see the module's comment.
#[derive(Debug, Default)]
pub struct ListParams {
    params: Vec<Param>,
}

/// The order a list asks for: a field and whether it ascends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub field: String,
    pub ascending: bool,
}

/// `from`/`to` bounds of a timestamp filter (Unix seconds), inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl ListParams {
    pub fn parse(query: &str) -> Self {
        let params = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| {
                let (root, path) = split_name(&k);
                Param {
                    name: k.into_owned(),
                    root,
                    path,
                    value: v.into_owned(),
                    taken: false,
                }
            })
            .collect();
        Self { params }
    }

    /// The last value of a plain parameter (`page`, `status_id`), taken.
    pub fn take(&mut self, name: &str) -> Option<String> {
        let mut found = None;
        for p in &mut self.params {
            if p.root == name && p.path.is_empty() {
                p.taken = true;
                found = Some(p.value.clone());
            }
        }
        found
    }

    /// A plain parameter parsed as a number (or any `FromStr`), naming it when it is not.
    pub fn number<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, Problem> {
        self.take(name).map(|v| parse_value(name, &v)).transpose()
    }

    /// Every parameter under `root[first]…` (all of `root` when `first` is `None`):
    /// the segments after `first` and the value, in the order sent; taken.
    pub fn take_under(&mut self, root: &str, first: &str) -> Vec<(Vec<String>, String, String)> {
        let mut out = Vec::new();
        for p in &mut self.params {
            if p.root == root && p.path.first().is_some_and(|f| f == first) {
                p.taken = true;
                out.push((p.path[1..].to_vec(), p.value.clone(), p.name.clone()));
            }
        }
        out
    }

    /// `page` and `limit` (the default limit given).
    pub fn paging(&mut self, default_limit: usize) -> Result<Paging, Problem> {
        let page = self.number("page")?;
        let limit = self.number("limit")?;
        Paging::new(page, Some(limit.unwrap_or(default_limit)))
    }

    /// The `with` values (`with=contacts,leads`), taken.
    pub fn with(&mut self) -> Vec<String> {
        self.take("with")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `order[<field>]=asc|desc`, one of `fields`.
    pub fn order(&mut self, fields: &[&str]) -> Result<Option<Order>, Problem> {
        let mut order = None;
        let mut errors = Vec::new();
        for p in &mut self.params {
            if p.root != "order" {
                continue;
            }
            p.taken = true;
            let field = match p.path.as_slice() {
                [field] if fields.contains(&field.as_str()) => field.clone(),
                _ => {
                    errors.push(FieldError::new(
                        p.name.clone(),
                        format!("orders by one of: {}", fields.join(", ")),
                    ));
                    continue;
                }
            };
            let ascending = match p.value.to_ascii_lowercase().as_str() {
                "asc" => true,
                "desc" => false,
                _ => {
                    errors.push(FieldError::new(p.name.clone(), "is asc or desc"));
                    continue;
                }
            };
            order = Some(Order { field, ascending });
        }
        if errors.is_empty() {
            Ok(order)
        } else {
            Err(Problem::invalid(errors))
        }
    }

    /// `filter[<name>]` as a list of numbers: `filter[id]=1`, `filter[id][]=1&…`,
    /// `filter[id][0]=1`, or `filter[id]=1,2`.
    pub fn filter_numbers<T: FromStr>(&mut self, name: &str) -> Result<Vec<T>, Problem> {
        let mut out = Vec::new();
        for (rest, value, full) in self.take_under("filter", name) {
            if rest.len() > 1 || rest.first().is_some_and(|s| !is_index(s)) {
                return Err(unknown(&[full]));
            }
            for part in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                out.push(parse_value(&full, part)?);
            }
        }
        Ok(out)
    }

    /// `filter[<name>]` as strings, in the same forms as `filter_numbers`.
    pub fn filter_strings(&mut self, name: &str) -> Result<Vec<String>, Problem> {
        let mut out = Vec::new();
        for (rest, value, full) in self.take_under("filter", name) {
            if rest.len() > 1 || rest.first().is_some_and(|s| !is_index(s)) {
                return Err(unknown(&[full]));
            }
            if !value.is_empty() {
                out.push(value);
            }
        }
        Ok(out)
    }

    /// `filter[<name>][from]` and `[to]` (Unix seconds); `filter[<name>]=t` is both.
    pub fn filter_range(&mut self, name: &str) -> Result<Range, Problem> {
        let mut range = Range::default();
        for (rest, value, full) in self.take_under("filter", name) {
            let at: i64 = parse_value(&full, &value)?;
            match rest.as_slice() {
                [] => {
                    range.from = Some(at);
                    range.to = Some(at);
                }
                [bound] if bound == "from" => range.from = Some(at),
                [bound] if bound == "to" => range.to = Some(at),
                _ => return Err(unknown(&[full])),
            }
        }
        Ok(range)
    }

    /// The paging of a list that has no filters (`with` is accepted and has no effect);
    /// anything else is refused.
    pub fn paging_only(mut self) -> Result<Paging, Problem> {
        let paging = self.paging(super::DEFAULT_LIMIT)?;
        self.with();
        self.finish()?;
        Ok(paging)
    }

    /// Refuses whatever no one took, naming each parameter.
    pub fn finish(self) -> Result<(), Problem> {
        let left: Vec<String> = self
            .params
            .into_iter()
            .filter(|p| !p.taken)
            .map(|p| p.name)
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(unknown(&left))
        }
    }
}

fn is_index(s: &str) -> bool {
    s.is_empty() || s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_value<T: FromStr>(name: &str, value: &str) -> Result<T, Problem> {
    value
        .trim()
        .parse()
        .map_err(|_| Problem::field(name, format!("`{value}` is not a valid value")))
}

/// The refusal of parameters a list does not know.
pub fn unknown(names: &[String]) -> Problem {
    Problem::invalid(
        names
            .iter()
            .map(|n| FieldError::new(n.clone(), "is not a parameter of this list"))
            .collect(),
    )
}

impl FromRequest for ListParams {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::parse(req.query_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracket_filters_are_read_as_amocrm_writes_them() {
        let mut p = ListParams::parse(
            "filter%5Bstatuses%5D%5B0%5D%5Bpipeline_id%5D=1&filter[statuses][0][status_id]=1002\
             &filter[id][]=3&filter[id][]=4&filter[created_at][from]=10&order[id]=asc&with=contacts",
        );
        let statuses = p.take_under("filter", "statuses");
        assert_eq!(statuses.len(), 2);
        assert_eq!(
            statuses[0].0,
            vec!["0".to_owned(), "pipeline_id".to_owned()]
        );
        assert_eq!(p.filter_numbers::<u64>("id").unwrap(), vec![3, 4]);
        assert_eq!(
            p.filter_range("created_at").unwrap(),
            Range {
                from: Some(10),
                to: None
            }
        );
        assert_eq!(
            p.order(&["id"]).unwrap(),
            Some(Order {
                field: "id".into(),
                ascending: true
            })
        );
        assert_eq!(p.with(), vec!["contacts".to_owned()]);
        assert!(p.finish().is_ok());
    }

    #[test]
    fn what_no_one_took_is_refused_by_name() {
        let mut p = ListParams::parse("page=1&filter[nope]=2&colour=red");
        p.paging(50).unwrap();
        let e = p.finish().unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.detail.contains("filter[nope]") && e.detail.contains("colour"));
    }
}
