//! Property tests for every parser in herald-core that reads outside input:
//! payloads through the date conversion, endpoint URLs, names, `Retry-After`,
//! JSON Schemas and the strict JSON check. Each asserts something stronger
//! than "does not panic" wherever there is something stronger to say. The
//! fuzz targets in `fuzz/` hunt the same properties for longer.

mod dates;
mod endpoint_url;
mod gen;
mod json;
mod name;
mod schedule;
mod schema;
