//! Fake metadata services speaking each provider's documented protocol, built from the samples
//! in `tests/fixtures/`.

use std::sync::Arc;

use base64::Engine;

use super::server::{Handler, Req, Resp};

/// What a fake service serves.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// User-data; `None` answers 404 (Azure: an empty 200).
    pub user_data: Option<Vec<u8>>,
    /// Serve a metadata document that does not parse.
    pub malformed: bool,
    /// EC2: refuse the IMDSv2 token with this status (and accept IMDSv1 requests).
    pub token_status: Option<u16>,
}

/// One provider: its kiln name, DMI identity, instance id in the sample and fake service.
pub struct Provider {
    pub name: &'static str,
    pub dmi: (&'static str, &'static str, &'static str),
    pub instance_id: &'static str,
    pub handler: fn(Opts) -> Handler,
}

/// Every HTTP provider.
pub const ALL: &[Provider] = &[
    Provider {
        name: "ec2",
        dmi: ("Amazon EC2", "m5.large", "Amazon EC2"),
        instance_id: "i-0f1e2d3c4b5a69788",
        handler: ec2,
    },
    Provider {
        name: "gce",
        dmi: ("Google", "Google Compute Engine", ""),
        instance_id: "4520031799277581759",
        handler: gce,
    },
    Provider {
        name: "azure",
        dmi: (
            "Microsoft Corporation",
            "Virtual Machine",
            "7783-7084-3265-9085-8269-3286-77",
        ),
        instance_id: "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
        handler: azure,
    },
    Provider {
        name: "openstack",
        dmi: ("OpenStack Foundation", "OpenStack Nova", ""),
        instance_id: "83679162-1378-4288-a2d4-70e13ec132aa",
        handler: openstack,
    },
    Provider {
        name: "digitalocean",
        dmi: ("DigitalOcean", "Droplet", ""),
        instance_id: "2756294",
        handler: digitalocean,
    },
    Provider {
        name: "hetzner",
        dmi: ("Hetzner", "vServer", ""),
        instance_id: "42424242",
        handler: hetzner,
    },
];

/// The provider called `name`.
pub fn provider(name: &str) -> &'static Provider {
    ALL.iter().find(|p| p.name == name).unwrap()
}

fn doc(opts: &Opts, sample: &str) -> Resp {
    Resp::ok(if opts.malformed {
        "{\"truncated\": "
    } else {
        sample
    })
}

fn user_data(opts: &Opts) -> Resp {
    opts.user_data
        .clone()
        .map(Resp::ok)
        .unwrap_or(Resp::status(404))
}

/// EC2 IMDS: IMDSv2 token, then GETs carrying it.
fn ec2(opts: Opts) -> Handler {
    Arc::new(move |r: &Req| {
        if r.method == "PUT" && r.path == "/latest/api/token" {
            if let Some(status) = opts.token_status {
                return Resp::status(status);
            }
            if r.header("x-aws-ec2-metadata-token-ttl-seconds").is_none() {
                return Resp::status(400);
            }
            return Resp::ok("AQAEAtoken==");
        }
        if opts.token_status.is_none()
            && r.header("x-aws-ec2-metadata-token") != Some("AQAEAtoken==")
        {
            return Resp::status(401);
        }
        match r.path.as_str() {
            "/latest/dynamic/instance-identity/document" => doc(
                &opts,
                include_str!("../fixtures/ec2/identity-document.json"),
            ),
            "/latest/meta-data/local-hostname" => {
                Resp::ok("ip-10-0-1-7.eu-west-1.compute.internal")
            }
            "/latest/user-data" => user_data(&opts),
            _ => Resp::status(404),
        }
    })
}

/// GCE: every request and answer carries `Metadata-Flavor: Google`.
fn gce(opts: Opts) -> Handler {
    Arc::new(move |r: &Req| {
        if r.header("metadata-flavor") != Some("Google") {
            return Resp::status(403);
        }
        let resp = match r.path.as_str() {
            "/computeMetadata/v1/" => Resp::ok("instance/\nproject/\n"),
            "/computeMetadata/v1/instance/?recursive=true&alt=json" => {
                doc(&opts, include_str!("../fixtures/gce/instance.json"))
            }
            "/computeMetadata/v1/instance/attributes/user-data" => user_data(&opts),
            _ => Resp::status(404),
        };
        resp.with_header("Metadata-Flavor", "Google")
    })
}

/// Azure IMDS: `Metadata: true` required; userData is base64, empty when unset.
fn azure(opts: Opts) -> Handler {
    Arc::new(move |r: &Req| {
        if r.header("metadata") != Some("true") {
            return Resp::status(400);
        }
        match r.path.as_str() {
            "/metadata/instance?api-version=2021-02-01" => {
                doc(&opts, include_str!("../fixtures/azure/instance.json"))
            }
            "/metadata/instance/compute/userData?api-version=2021-01-01&format=text" => {
                let ud = opts.user_data.as_deref().unwrap_or_default();
                Resp::ok(base64::engine::general_purpose::STANDARD.encode(ud))
            }
            _ => Resp::status(404),
        }
    })
}

/// OpenStack metadata service (with the EC2-compatible local-ipv4).
fn openstack(opts: Opts) -> Handler {
    Arc::new(move |r: &Req| match r.path.as_str() {
        "/openstack/latest/meta_data.json" => {
            doc(&opts, include_str!("../fixtures/openstack/meta_data.json"))
        }
        "/openstack/latest/user_data" => user_data(&opts),
        "/latest/meta-data/local-ipv4" => Resp::ok("10.0.0.5"),
        _ => Resp::status(404),
    })
}

/// DigitalOcean droplet metadata.
fn digitalocean(opts: Opts) -> Handler {
    Arc::new(move |r: &Req| match r.path.as_str() {
        "/metadata/v1.json" => doc(&opts, include_str!("../fixtures/digitalocean/v1.json")),
        "/metadata/v1/id" => Resp::ok("2756294"),
        "/metadata/v1/user-data" => user_data(&opts),
        _ => Resp::status(404),
    })
}

/// Hetzner Cloud metadata (YAML).
fn hetzner(opts: Opts) -> Handler {
    Arc::new(move |r: &Req| match r.path.as_str() {
        "/hetzner/v1/metadata" => Resp::ok(if opts.malformed {
            "hostname: [unclosed"
        } else {
            include_str!("../fixtures/hetzner/metadata.yaml")
        }),
        "/hetzner/v1/userdata" => user_data(&opts),
        _ => Resp::status(404),
    })
}
