//! A served request's span name (`GET /generate/{model}`), route template
//! and method as `&'static str`: made once per route and method, then found
//! without allocating, so that naming a request costs a lookup rather than
//! three strings. Route templates are few; past [`MAX_ROUTES`] of them (an
//! app that adds routes at run time without end) a name is made per request
//! instead, so memory stays bounded.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, PoisonError};

use http::Method;

/// Route-and-method names kept for the life of the process.
const MAX_ROUTES: usize = 1024;

/// One route's names.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RouteName {
    /// `{method} {route}`, the span's name.
    pub(crate) span: &'static str,
    /// The route template, `http.route`.
    pub(crate) route: &'static str,
}

/// Every thread's names, by method and route.
type Kept = HashMap<(Method, String), RouteName>;
/// One thread's copy, by the address of the route's template (axum keeps one
/// per route: found without reading the text), checked against the text.
type Seen = HashMap<usize, Vec<(Method, RouteName)>, BuildHasherDefault<AddressHasher>>;

/// Entries a thread keeps before it starts over (routers built again and
/// again put the same templates at new addresses).
const MAX_SEEN: usize = 4 * MAX_ROUTES;

static KEPT: Mutex<Option<Kept>> = Mutex::new(None);

thread_local! {
    /// This thread's copy of what it has looked up, so that a request takes
    /// no lock.
    static SEEN: RefCell<Seen> = RefCell::new(Seen::default());
}

/// The names of `route` under `method`, or `None` once [`MAX_ROUTES`] are
/// kept and this is a new one.
pub(crate) fn route_name(method: &Method, route: &str) -> Option<RouteName> {
    let address = route.as_ptr() as usize;
    let seen = SEEN.with_borrow(|seen| {
        let names = seen.get(&address)?;
        names.iter().find(|(m, name)| m == method && name.route == route).map(|(_, name)| *name)
    });
    if seen.is_some() {
        return seen;
    }
    let name = keep(method, route)?;
    SEEN.with_borrow_mut(|seen| {
        if seen.len() >= MAX_SEEN {
            seen.clear();
        }
        seen.entry(address).or_default().push((method.clone(), name));
    });
    Some(name)
}

/// An address is its own hash, spread over the bits.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, address: usize) {
        self.0 = (address as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn keep(method: &Method, route: &str) -> Option<RouteName> {
    let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    keep_in(kept.get_or_insert_with(HashMap::new), MAX_ROUTES, method, route)
}

fn keep_in(kept: &mut Kept, bound: usize, method: &Method, route: &str) -> Option<RouteName> {
    if let Some(name) = kept.get(&(method.clone(), route.to_string())) {
        return Some(*name);
    }
    if kept.len() >= bound {
        return None;
    }
    let leaked_route: &'static str = match kept.values().find(|name| name.route == route) {
        Some(name) => name.route,
        None => Box::leak(route.into()),
    };
    let span: &'static str = Box::leak(format!("{method} {route}").into_boxed_str());
    let name = RouteName { span, route: leaked_route };
    kept.insert((method.clone(), route.to_string()), name);
    Some(name)
}

/// The method's name, borrowed for the standard methods.
pub(crate) fn method_name(method: &Method) -> Cow<'static, str> {
    let standard = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => return Cow::Owned(method.as_str().to_string()),
    };
    Cow::Borrowed(standard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_is_named_once_per_method() {
        let first = route_name(&Method::POST, "/names/{model}").unwrap();
        assert_eq!((first.span, first.route), ("POST /names/{model}", "/names/{model}"));
        let again = route_name(&Method::POST, "/names/{model}").unwrap();
        assert!(std::ptr::eq(first.span, again.span), "the same name, not a new one");
        let get = route_name(&Method::GET, "/names/{model}").unwrap();
        assert_eq!(get.span, "GET /names/{model}");
        assert!(std::ptr::eq(first.route, get.route), "one template for both methods");
        let elsewhere =
            std::thread::spawn(|| route_name(&Method::POST, "/names/{model}").unwrap().span).join().unwrap();
        assert!(std::ptr::eq(first.span, elsewhere), "kept for every thread");
    }

    #[test]
    fn a_template_at_an_address_once_used_by_another_is_named_by_its_text() {
        let mut template = String::from("/reused/{a}");
        assert_eq!(route_name(&Method::GET, &template).unwrap().span, "GET /reused/{a}");
        // Same address, other text: a router built again.
        template.replace_range(8..11, "{b}");
        assert_eq!(route_name(&Method::GET, &template).unwrap().span, "GET /reused/{b}");
    }

    #[test]
    fn names_stop_being_kept_past_the_bound() {
        let mut kept = HashMap::new();
        for i in 0..3 {
            assert!(keep_in(&mut kept, 3, &Method::PUT, &format!("/bound/{i}")).is_some());
        }
        assert!(keep_in(&mut kept, 3, &Method::PUT, "/bound/3").is_none(), "a fourth is not kept");
        assert!(keep_in(&mut kept, 3, &Method::PUT, "/bound/0").is_some(), "those kept stay");
    }

    #[test]
    fn other_methods_are_named_as_sent() {
        assert_eq!(method_name(&Method::from_bytes(b"PURGE").unwrap()), "PURGE");
        assert!(matches!(method_name(&Method::DELETE), Cow::Borrowed("DELETE")));
    }
}
