"""Conformance check: Microsoft's own Python libraries against graph-emulator.

Starts `graph-emulator serve --tls --ca-out` on a generated scenario (plus an app certificate made
here), then drives it only through MSAL, azure-identity, msgraph-sdk (GraphServiceClient) and
msgraph-core (PageIterator, BatchRequestContent). Every check that fails is printed with its
reason; the exit status is non-zero if any failed. It never talks to anything but the emulator on
127.0.0.1, and it never works around an emulator answer: if an SDK cannot digest what the
emulator sends, that is a failure to fix in the emulator (or, when Graph itself answers that way,
a documented SDK limitation).

Usage: python check.py --emulator PATH/TO/graph-emulator --workdir DIR
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import traceback
import urllib.request

FAILURES: list[str] = []
PASSED: list[str] = []


def check(name: str, condition: bool, detail: object = "") -> bool:
    """Records one assertion; never raises, so one run reports every incompatibility."""
    if condition:
        PASSED.append(name)
        print(f"  ok   {name}")
    else:
        FAILURES.append(f"{name}: {detail}")
        print(f"  FAIL {name}: {detail}")
    return condition


def section(title: str):
    """Decorator: runs a check group, turning an unexpected exception into one failure."""

    def wrap(fn):
        async def run(*args, **kwargs):
            print(f"== {title}")
            try:
                result = fn(*args, **kwargs)
                if asyncio.iscoroutine(result):
                    await result
            except Exception as e:  # noqa: BLE001 - any SDK exception is a finding
                FAILURES.append(f"{title}: unexpected {type(e).__name__}: {e}")
                print(f"  FAIL {title}: unexpected {type(e).__name__}: {e}")
                traceback.print_exc()

        return run

    return wrap


# --------------------------------------------------------------------------------------------
# Setup: an app certificate, the scenario, the emulator process.


def make_certificate(workdir: str) -> tuple[str, str]:
    """A self-signed RSA certificate for the app (what an admin uploads to the app registration)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "synccontacts-sdk-conformance")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    with open(os.path.join(workdir, "app-cert.pem"), "w") as f:
        f.write(key_pem + cert_pem)
    return key_pem, cert_pem


SALES_GROUP = "6a1f5a7e-0000-4000-8000-00000000000a"
EMEA_GROUP = "6a1f5a7e-0000-4000-8000-00000000000b"

GITLAB_ISSUER = "https://gitlab.example.com"
GITLAB_SUBJECT = "project_path:grp/proj:ref_type:branch:ref:main"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"


def make_ci_issuer_key() -> tuple[str, str]:
    """The signing key of a stand-in CI identity provider (GitLab's id_tokens), PEM private/public."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


def ci_id_token(private_pem: str, subject: str = GITLAB_SUBJECT) -> str:
    """A GitLab-style CI job id token (docs/graph-facts.md §8: iss = GitLab URL, sub =
    project/ref)."""
    import jwt

    now = int(time.time())
    claims = {"iss": GITLAB_ISSUER, "sub": subject, "aud": FEDERATED_AUDIENCE, "iat": now, "nbf": now, "exp": now + 300}
    return jwt.encode(claims, private_pem, algorithm="RS256", headers={"kid": "ci"})


def make_scenario(emulator: str, workdir: str, cert_pem: str, ci_public_pem: str) -> dict:
    out = subprocess.run(
        [emulator, "generate", "--users", "5", "--contacts-per-user", "25", "--seed", "7"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    scenario = json.loads(out)
    scenario["tenants"][0]["apps"][0]["certificatePem"] = cert_pem
    scenario["tenants"][0]["apps"][0]["federated"] = [
        {"issuer": GITLAB_ISSUER, "subject": GITLAB_SUBJECT, "audience": FEDERATED_AUDIENCE, "jwksPem": ci_public_pem}
    ]
    # Groups for the scope-by-group checks: Sales = {user 1, user 2, EMEA}; EMEA = {user 2,
    # user 3, Sales} (nested, with a cycle).
    users = [u["userPrincipalName"] for u in scenario["tenants"][0]["users"] if u.get("assignedLicenses")]
    scenario["tenants"][0]["apps"][0]["roles"].append("GroupMember.Read.All")
    scenario["tenants"][0]["groups"] = [
        {"id": SALES_GROUP, "displayName": "Sales", "mail": "sales@contoso.com", "members": [users[0], users[1], EMEA_GROUP]},
        {"id": EMEA_GROUP, "displayName": "EMEA", "mail": None, "members": [users[1], users[2], SALES_GROUP]},
    ]
    with open(os.path.join(workdir, "scenario.json"), "w") as f:
        json.dump(scenario, f)
    return scenario


class Emulator:
    """The emulator binary as a child process, stopped (SIGTERM) on exit."""

    def __init__(self, binary: str, workdir: str):
        self.ca = os.path.join(workdir, "ca.pem")
        self.log = open(os.path.join(workdir, "emulator.log"), "w")
        self.proc = subprocess.Popen(
            [
                binary,
                "serve",
                "--scenario",
                os.path.join(workdir, "scenario.json"),
                "--tls",
                "--ca-out",
                self.ca,
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on https://"):
            self.stop()
            raise RuntimeError(f"emulator did not start: {line!r} (see emulator.log)")
        self.url = line.removeprefix("listening on ")

    def control(self, method: str, path: str, body: object = None) -> object:
        """The control plane (no auth, never part of the Graph surface)."""
        import ssl

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        ctx = ssl.create_default_context(cafile=self.ca)
        with urllib.request.urlopen(req, context=ctx) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


# --------------------------------------------------------------------------------------------
# The checks.

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class Ctx:
    emu: Emulator
    tenant_id: str
    domain: str
    client_id: str
    secret: str
    key_pem: str
    cert_pem: str
    ci_private_pem: str
    licensed: list[str]
    hub: str


@section("MSAL: client secret")
def msal_secret(c: Ctx) -> None:
    import msal

    # instance_discovery=False: MSAL would otherwise ask login.microsoftonline.com whether the
    # host is a known cloud (the documented switch for private/custom authorities).
    for authority in (f"{c.emu.url}/{c.tenant_id}", f"{c.emu.url}/{c.domain}"):
        app = msal.ConfidentialClientApplication(
            c.client_id,
            client_credential=c.secret,
            authority=authority,
            instance_discovery=False,
            verify=c.emu.ca,
        )
        result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        check(f"token via authority …/{authority.rsplit('/', 1)[1]}", "access_token" in result, result)
        if "access_token" in result:
            check("token_type is Bearer", result.get("token_type") == "Bearer", result.get("token_type"))
            check("expires_in is a number", isinstance(result.get("expires_in"), int), result.get("expires_in"))
            check("token_source is identity_provider", result.get("token_source") == "identity_provider", result)
            again = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
            check("second call is served from MSAL's cache", again.get("token_source") == "cache", again.get("token_source"))

    # Instance discovery pointed at the emulator (MSAL accepts a URL for it): the emulator's
    # /common/discovery/instance answer must lead MSAL to the tenant's discovery document.
    app = msal.ConfidentialClientApplication(
        c.client_id,
        client_credential=c.secret,
        authority=f"{c.emu.url}/{c.tenant_id}",
        instance_discovery=f"{c.emu.url}/common/discovery/instance",
        verify=c.emu.ca,
    )
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    check("token after instance discovery against the emulator", "access_token" in result, result)

    bad = msal.ConfidentialClientApplication(
        c.client_id,
        client_credential="not-the-secret",
        authority=f"{c.emu.url}/{c.tenant_id}",
        instance_discovery=False,
        verify=c.emu.ca,
    )
    result = bad.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    check("wrong secret: error invalid_client", result.get("error") == "invalid_client", result)
    check("wrong secret: error_codes [7000215]", result.get("error_codes") == [7000215], result.get("error_codes"))
    check(
        "wrong secret: description starts with AADSTS7000215",
        str(result.get("error_description", "")).startswith("AADSTS7000215"),
        result.get("error_description"),
    )

    unknown = msal.ConfidentialClientApplication(
        "00000000-0000-0000-0000-00000000beef",
        client_credential=c.secret,
        authority=f"{c.emu.url}/{c.tenant_id}",
        instance_discovery=False,
        verify=c.emu.ca,
    )
    result = unknown.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    check("unknown client: error_codes [700016]", result.get("error_codes") == [700016], result)

    try:
        msal.ConfidentialClientApplication(
            c.client_id,
            client_credential=c.secret,
            authority=f"{c.emu.url}/nosuchtenant.example",
            instance_discovery=False,
            verify=c.emu.ca,
        )
        check("unknown tenant rejected at authority discovery", False, "MSAL accepted it")
    except ValueError as e:
        check("unknown tenant rejected at authority discovery", "nosuchtenant" in str(e), e)


@section("MSAL: certificate (client assertion)")
def msal_certificate(c: Ctx) -> None:
    import msal
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(c.cert_pem.encode())
    sha1 = cert.fingerprint(hashes.SHA1()).hex()
    credentials = {
        # PS256 + x5t#S256 (MSAL >= 1.35 when given the public certificate; the current doc's form).
        "public_certificate (PS256, x5t#S256, x5c)": {
            "private_key": c.key_pem,
            "public_certificate": c.cert_pem,
        },
        # RS256 + SHA-1 x5t (the older form, still accepted by Entra).
        "thumbprint (RS256, x5t)": {"private_key": c.key_pem, "thumbprint": sha1},
    }
    for label, credential in credentials.items():
        app = msal.ConfidentialClientApplication(
            c.client_id,
            client_credential=credential,
            authority=f"{c.emu.url}/{c.tenant_id}",
            instance_discovery=False,
            verify=c.emu.ca,
        )
        result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        check(f"certificate {label}: token", "access_token" in result, result)

    # A certificate the app registration does not know: AADSTS700027 (signature validation).
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    app = msal.ConfidentialClientApplication(
        c.client_id,
        client_credential={"private_key": other_pem, "thumbprint": sha1},
        authority=f"{c.emu.url}/{c.tenant_id}",
        instance_discovery=False,
        verify=c.emu.ca,
    )
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    check("foreign key: error_codes [700027]", result.get("error_codes") == [700027], result)


@section("azure-identity: ClientSecretCredential and CertificateCredential")
def azure_identity_tokens(c: Ctx) -> None:
    import jwt
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CertificateCredential, ClientSecretCredential

    common = dict(authority=c.emu.url, disable_instance_discovery=True, connection_verify=c.emu.ca)
    token = ClientSecretCredential(c.tenant_id, c.client_id, c.secret, **common).get_token(GRAPH_SCOPE)
    check("ClientSecretCredential token", bool(token.token))
    check("expires_on in the future", token.expires_on > time.time() + 60, token.expires_on)
    claims = jwt.decode(token.token, options={"verify_signature": False})
    check("access token roles carry the app's permissions", "Contacts.ReadWrite" in claims.get("roles", []), claims)
    check("access token aud is Graph", claims.get("aud") == "https://graph.microsoft.com", claims.get("aud"))
    check("access token tid is the tenant", claims.get("tid") == c.tenant_id, claims.get("tid"))

    pem = (c.key_pem + c.cert_pem).encode()
    token = CertificateCredential(c.tenant_id, c.client_id, certificate_data=pem, **common).get_token(GRAPH_SCOPE)
    check("CertificateCredential token", bool(token.token))
    token = CertificateCredential(
        c.tenant_id, c.client_id, certificate_data=pem, send_certificate_chain=True, **common
    ).get_token(GRAPH_SCOPE)
    check("CertificateCredential (send_certificate_chain) token", bool(token.token))

    try:
        ClientSecretCredential(c.tenant_id, c.client_id, "wrong", **common).get_token(GRAPH_SCOPE)
        check("wrong secret raises ClientAuthenticationError", False, "no exception")
    except ClientAuthenticationError as e:
        check("wrong secret raises ClientAuthenticationError with AADSTS7000215", "AADSTS7000215" in str(e), e)


@section("federated credential (workload identity, as from GitLab CI)")
def federated(c: Ctx) -> None:
    import msal
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientAssertionCredential

    common = dict(authority=c.emu.url, disable_instance_discovery=True, connection_verify=c.emu.ca)
    credential = ClientAssertionCredential(c.tenant_id, c.client_id, lambda: ci_id_token(c.ci_private_pem), **common)
    token = credential.get_token(GRAPH_SCOPE)
    check("azure-identity ClientAssertionCredential token", bool(token.token))

    app = msal.ConfidentialClientApplication(
        c.client_id,
        client_credential={"client_assertion": ci_id_token(c.ci_private_pem)},
        authority=f"{c.emu.url}/{c.tenant_id}",
        instance_discovery=False,
        verify=c.emu.ca,
    )
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    check("MSAL with a federated client_assertion", "access_token" in result, result)

    other_branch = "project_path:grp/proj:ref_type:branch:ref:feature"
    try:
        ClientAssertionCredential(
            c.tenant_id, c.client_id, lambda: ci_id_token(c.ci_private_pem, other_branch), **common
        ).get_token(GRAPH_SCOPE)
        check("another branch's token rejected", False, "accepted")
    except ClientAuthenticationError as e:
        check("another branch's token: AADSTS70021 (no wildcard subjects)", "AADSTS70021" in str(e), e)


def graph_client(c: Ctx):
    """GraphServiceClient on the emulator: the SDK's default middleware, base URL overridden."""
    from azure.identity.aio import ClientSecretCredential
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core.authentication import AzureIdentityAuthenticationProvider

    credential = ClientSecretCredential(
        c.tenant_id,
        c.client_id,
        c.secret,
        authority=c.emu.url,
        disable_instance_discovery=True,
        connection_verify=c.emu.ca,
    )
    host = c.emu.url.split("://", 1)[1].split(":")[0]
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{c.emu.url}/v1.0"
    return GraphServiceClient(request_adapter=adapter), credential


@section("msgraph-sdk: users with the licence filter, PageIterator")
async def users_paging(c: Ctx) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
    from msgraph_core.tasks.page_iterator import PageIterator

    client, cred = graph_client(c)
    try:
        # The documented advanced query: ConsistencyLevel: eventual + $count=true
        # (docs/graph-facts.md §4).
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter="assignedLicenses/$count ne 0",
            count=True,
            top=2,
            select=["id", "userPrincipalName", "assignedLicenses", "accountEnabled"],
        )
        config = RequestConfiguration(query_parameters=query)
        config.headers.add("ConsistencyLevel", "eventual")
        first = await client.users.get(request_configuration=config)
        check("first page has 2 users", len(first.value) == 2, len(first.value))
        check("@odata.count on page 1 counts the licensed users", first.odata_count == len(c.licensed), first.odata_count)
        check("nextLink present", bool(first.odata_next_link), first.odata_next_link)
        check(
            "nextLink is on the host the client used",
            (first.odata_next_link or "").startswith(f"{c.emu.url}/v1.0/users"),
            first.odata_next_link,
        )
        users = []
        iterator = PageIterator(first, client.request_adapter)
        # ConsistencyLevel is not carried in the nextLink: resend it on every page
        # (docs/graph-facts.md §3). (PageIterator.set_headers is broken in msgraph-core 1.5.2 — it
        # calls HeadersCollection.add_all(**dict) — so the collection is filled directly.)
        iterator.headers.add("ConsistencyLevel", "eventual")

        def collect(user) -> bool:
            users.append(user)
            return True

        await iterator.iterate(collect)
        upns = sorted(u.user_principal_name for u in users)
        check("PageIterator walks every licensed user once", upns == sorted(c.licensed), upns)
        check("assignedLicenses parsed as SDK objects", all(u.assigned_licenses and u.assigned_licenses[0].sku_id for u in users), users[:1])
        check("accountEnabled parsed", all(u.account_enabled is True for u in users), [u.account_enabled for u in users])

        # Without the advanced-query parameters the ne form is unsupported: 400 Request_UnsupportedQuery.
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        plain = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                filter="assignedLicenses/$count ne 0"
            )
        )
        try:
            await client.users.get(request_configuration=plain)
            check("advanced filter without ConsistencyLevel rejected", False, "accepted")
        except ODataError as e:
            check("advanced filter without ConsistencyLevel: 400", e.response_status_code == 400, e.response_status_code)
            check(
                "advanced filter without ConsistencyLevel: Request_UnsupportedQuery",
                e.error is not None and e.error.code == "Request_UnsupportedQuery",
                e.error and e.error.code,
            )

        user = await client.users.by_user_id(c.hub).get()
        check("GET /users/{upn} for the (unlicensed) hub", user.user_principal_name == c.hub, user.user_principal_name)

        orgs = await client.organization.get()
        domains = [d.name for d in orgs.value[0].verified_domains]
        check("organization verifiedDomains", c.domain in domains, domains)
    finally:
        await cred.close()


@section("msgraph-sdk: contacts paging, create/update/delete, errors")
async def contacts(c: Ctx) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.contact import Contact
    from msgraph.generated.models.email_address import EmailAddress
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.users.item.contacts.contacts_request_builder import ContactsRequestBuilder
    from msgraph_core.tasks.page_iterator import PageIterator

    client, cred = graph_client(c)
    try:
        upn = c.licensed[0]
        contacts_api = client.users.by_user_id(upn).contacts

        default_page = await contacts_api.get()
        check("default contacts page is 10", len(default_page.value) == 10, len(default_page.value))
        check("contacts nextLink uses $skip", "%24skip=10" in (default_page.odata_next_link or "") or "$skip=10" in (default_page.odata_next_link or ""), default_page.odata_next_link)

        query = ContactsRequestBuilder.ContactsRequestBuilderGetQueryParameters(
            top=7, select=["id", "displayName", "emailAddresses", "parentFolderId"]
        )
        first = await contacts_api.get(request_configuration=RequestConfiguration(query_parameters=query))
        seen = []
        pages = 1

        iterator = PageIterator(first, client.request_adapter)
        original_next = iterator.next

        async def counting_next():
            nonlocal pages
            page = await original_next()
            if page is not None:
                pages += 1
            return page

        iterator.next = counting_next
        await iterator.iterate(lambda contact: seen.append(contact) or True)
        check("PageIterator walks all 25 contacts", len(seen) == 25, len(seen))
        check("… in 4 pages of $top=7", pages == 4, pages)
        check("… with distinct ids", len({x.id for x in seen}) == 25, len({x.id for x in seen}))
        check("$select trims: jobTitle absent", all(x.job_title is None for x in seen))
        check("emailAddresses parsed", all(x.email_addresses for x in seen))
        etag = seen[0].additional_data.get("@odata.etag")
        check("@odata.etag on list items", isinstance(etag, str) and etag.startswith('W/"'), etag)

        new = Contact(
            given_name="Zoë",
            surname="Conformance",
            display_name="Zoë Conformance",
            email_addresses=[EmailAddress(address="zoe@fabrikam.example", name="Zoë Conformance")],
            business_phones=["+1 555 0100"],
            personal_notes="created by the SDK conformance check",
        )
        created = await contacts_api.post(new)
        check("create returns an id", bool(created.id), created.id)
        check("create sets changeKey", bool(created.change_key), created.change_key)
        check("create sets createdDateTime as datetime", isinstance(created.created_date_time, datetime.datetime), created.created_date_time)
        check("unset collections come back as []", created.home_phones == [], created.home_phones)
        check("parentFolderId set", bool(created.parent_folder_id), created.parent_folder_id)

        item = contacts_api.by_contact_id(created.id)
        updated = await item.patch(Contact(job_title="Tester", display_name="Zoë Conformance"))
        check("PATCH returns the updated contact", updated.job_title == "Tester", updated.job_title)
        check("PATCH changes changeKey", updated.change_key != created.change_key, (created.change_key, updated.change_key))
        fetched = await item.get()
        check("GET by id sees the update", fetched.job_title == "Tester" and fetched.surname == "Conformance", fetched.job_title)

        # A stale If-Match gives 412 ErrorIrresolvableConflict (docs/graph-facts.md §1, §7).
        stale = RequestConfiguration()
        stale.headers.add("If-Match", f'W/"{created.change_key}"')
        try:
            await item.patch(Contact(job_title="Stale"), request_configuration=stale)
            check("stale If-Match rejected", False, "accepted")
        except ODataError as e:
            check("stale If-Match: 412 ErrorIrresolvableConflict", e.response_status_code == 412 and e.error.code == "ErrorIrresolvableConflict", (e.response_status_code, e.error and e.error.code))

        # The email filter finds it.
        by_mail = await contacts_api.get(
            request_configuration=RequestConfiguration(
                query_parameters=ContactsRequestBuilder.ContactsRequestBuilderGetQueryParameters(
                    filter="emailAddresses/any(a:a/address eq 'zoe@fabrikam.example')"
                )
            )
        )
        check("email $filter finds the new contact", [x.id for x in by_mail.value] == [created.id], [x.id for x in by_mail.value])

        await item.delete()
        try:
            await item.get()
            check("deleted contact is gone", False, "still there")
        except ODataError as e:
            check("deleted contact: 404 ErrorItemNotFound", e.response_status_code == 404 and e.error.code == "ErrorItemNotFound", (e.response_status_code, e.error and e.error.code))

        # Errors parse into the SDK's ODataError with Graph's codes (docs/graph-facts.md §7).
        # msgraph-core's telemetry middleware adds client-request-id only for Microsoft's Graph
        # hosts, so send one explicitly to see it echoed.
        with_id = RequestConfiguration()
        with_id.headers.add("client-request-id", "5a1c0e11-0000-4000-8000-00000000c0de")
        try:
            await client.users.by_user_id("nobody@contoso.com").contacts.get(request_configuration=with_id)
            check("unknown user's contacts rejected", False, "accepted")
        except ODataError as e:
            check("unknown user's contacts: 404", e.response_status_code == 404, e.response_status_code)
            check("unknown user's contacts: ErrorInvalidUser", e.error is not None and e.error.code == "ErrorInvalidUser", e.error and e.error.code)
            check("… message parsed", "nobody@contoso.com" in (e.error.message or ""), e.error and e.error.message)
            inner = e.error.inner_error if e.error else None
            check("… innerError request-id parsed", inner is not None and bool(inner.request_id), inner)
            check("… innerError date parsed", inner is not None and inner.date is not None, inner)
            check(
                "… innerError client-request-id echoed",
                inner is not None and inner.client_request_id == "5a1c0e11-0000-4000-8000-00000000c0de",
                inner,
            )
        try:
            await client.users.by_user_id("nobody@contoso.com").get()
            check("unknown user rejected", False, "accepted")
        except ODataError as e:
            check("unknown user: 404 Request_ResourceNotFound", e.response_status_code == 404 and e.error.code == "Request_ResourceNotFound", (e.response_status_code, e.error and e.error.code))
    finally:
        await cred.close()


@section("msgraph-sdk: contact folders")
async def contact_folders(c: Ctx) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.contact import Contact
    from msgraph.generated.models.contact_folder import ContactFolder
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.users.item.contact_folders.contact_folders_request_builder import (
        ContactFoldersRequestBuilder,
    )

    client, cred = graph_client(c)
    try:
        folders = client.users.by_user_id(c.hub).contact_folders
        created = await folders.post(ContactFolder(display_name="All Contacts"))
        check("folder created with an id", bool(created.id), created)
        check("folder's parent is the default folder", bool(created.parent_folder_id), created.parent_folder_id)
        try:
            await folders.post(ContactFolder(display_name="All Contacts"))
            check("duplicate folder name rejected", False, "accepted")
        except ODataError as e:
            check("duplicate folder: ErrorFolderExists", e.error is not None and e.error.code == "ErrorFolderExists", e.error and e.error.code)
        found = await folders.get(
            request_configuration=RequestConfiguration(
                query_parameters=ContactFoldersRequestBuilder.ContactFoldersRequestBuilderGetQueryParameters(
                    filter="displayName eq 'All Contacts'"
                )
            )
        )
        check("displayName filter finds the folder", [f.id for f in found.value] == [created.id], [f.id for f in found.value])
        child = await folders.by_contact_folder_id(created.id).child_folders.post(ContactFolder(display_name="Child"))
        check("child folder's parent is the folder", child.parent_folder_id == created.id, child.parent_folder_id)
        in_folder = folders.by_contact_folder_id(created.id).contacts
        contact = await in_folder.post(Contact(given_name="Folder", surname="Item", display_name="Folder Item"))
        check("contact created in the folder", contact.parent_folder_id == created.id, contact.parent_folder_id)
        listed = await in_folder.get()
        check("folder lists its contact", [x.id for x in listed.value] == [contact.id], [x.id for x in listed.value])
        fetched = await client.users.by_user_id(c.hub).contacts.by_contact_id(contact.id).get()
        check("/contacts/{id} resolves a contact in any folder", fetched.id == contact.id, fetched.id)
    finally:
        await cred.close()


@section("msgraph-core: $batch")
async def batch(c: Ctx) -> None:
    from msgraph.generated.models.contact import Contact
    from msgraph.generated.models.contact_collection_response import ContactCollectionResponse
    from msgraph_core.requests.batch_request_content import BatchRequestContent
    from msgraph_core.requests.batch_request_item import BatchRequestItem

    client, cred = graph_client(c)
    try:
        upn = c.licensed[1]
        api = client.users.by_user_id(upn).contacts
        list_info = api.to_get_request_information()
        create_info = api.to_post_request_information(
            Contact(given_name="Batch", surname="Item", display_name="Batch Item")
        )
        missing_info = client.users.by_user_id("nobody@contoso.com").contacts.to_get_request_information()
        content = BatchRequestContent()
        content.add_request("list", BatchRequestItem(request_information=list_info, id="list"))
        content.add_request("create", BatchRequestItem(request_information=create_info, id="create"))
        content.add_request("missing", BatchRequestItem(request_information=missing_info, id="missing"))
        response = await client.batch.post(content)
        codes = response.get_response_status_codes()
        check("batch: per-item statuses", codes == {"list": 200, "create": 201, "missing": 404}, codes)
        types = {k: (v.content_type or "") for k, v in response.responses.items()}
        check("batch: every item names its Content-Type", all(t.startswith("application/json") for t in types.values()), types)

        # msgraph-core 1.5.2 + kiota-serialization-json drop item bodies that are JSON objects
        # (microsoft/kiota-python#737), as Graph sends them (json-batching.md), so
        # get_response_by_id(id, Type) cannot work against Graph either. The item bodies are
        # therefore parsed with kiota's own JSON parse node from the raw batch answer: that proves
        # the emulator's shapes are what the SDK models expect.
        from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        info = await client.batch.to_post_request_information(content)
        raw = await client.request_adapter.send_primitive_async(info, "bytes", {})
        items = {r["id"]: r for r in json.loads(raw)["responses"]}

        def parse(item_id, model):
            body = json.dumps(items[item_id]["body"]).encode()
            return JsonParseNodeFactory().get_root_parse_node("application/json", body).get_object_value(model)

        page = parse("list", ContactCollectionResponse)
        check("batch: list item body parses as ContactCollectionResponse", len(page.value) == 10 and all(x.id for x in page.value), page)
        created = parse("create", Contact)
        check("batch: create item body parses as Contact", bool(created.id) and created.surname == "Item", created)
        err = parse("missing", ODataError)
        check("batch: failed item body parses as ODataError", err.error is not None and err.error.code == "ErrorInvalidUser", err)

        # DELETE with If-Match inside a $batch (contact-delete.md; docs/graph-facts.md §1, §7): the
        # etag from before an update is stale (412), the current one deletes (204, no body), and
        # a second DELETE finds nothing (404).
        victim = created.id
        stale_etag = f'W/"{created.change_key}"'
        updated = await api.by_contact_id(victim).patch(Contact(job_title="Batch Delete"))
        fresh_etag = f'W/"{updated.change_key}"'

        def delete_item(item_id: str, etag: str) -> BatchRequestItem:
            info = api.by_contact_id(victim).to_delete_request_information()
            info.headers.try_add("If-Match", etag)
            return BatchRequestItem(request_information=info, id=item_id)

        for item_id, etag, want in (("stale", stale_etag, 412), ("fresh", fresh_etag, 204), ("again", fresh_etag, 404)):
            one = BatchRequestContent()
            one.add_request(item_id, delete_item(item_id, etag))
            answer = await client.batch.post(one)
            got = answer.get_response_status_codes().get(item_id)
            check(f"batch: DELETE with If-Match ({item_id} etag) → {want}", got == want, got)
            if want == 412:
                info = await client.batch.to_post_request_information(one)
                raw = json.loads(await client.request_adapter.send_primitive_async(info, "bytes", {}))
                code = raw["responses"][0].get("body", {}).get("error", {}).get("code")
                check("batch: stale If-Match item is ErrorIrresolvableConflict", code == "ErrorIrresolvableConflict", code)
        try:
            await api.by_contact_id(victim).get()
            check("batch: the contact deleted in the batch is gone", False, "still there")
        except ODataError as e:
            check("batch: the contact deleted in the batch is gone (404)", e.response_status_code == 404, e.response_status_code)
    finally:
        await cred.close()


@section("msgraph-sdk: delta round")
async def delta(c: Ctx) -> None:
    from msgraph.generated.models.contact import Contact

    client, cred = graph_client(c)
    try:
        upn = c.licensed[2]
        api = client.users.by_user_id(upn).contacts
        first = await api.get()
        folder = first.value[0].parent_folder_id
        delta_api = client.users.by_user_id(upn).contact_folders.by_contact_folder_id(folder).contacts.delta
        page = await delta_api.get()
        ids = [x.id for x in page.value]
        while page.odata_next_link:
            page = await delta_api.with_url(page.odata_next_link).get()
            ids += [x.id for x in page.value]
        check("initial delta round returns every contact", len(set(ids)) == 25, len(set(ids)))
        check("round ends with a deltaLink", bool(page.odata_delta_link), page.odata_delta_link)
        delta_link = page.odata_delta_link

        target, gone = first.value[0].id, first.value[1].id
        await api.by_contact_id(target).patch(Contact(job_title="Delta Tester"))
        await api.by_contact_id(gone).delete()
        page = await delta_api.with_url(delta_link).get()
        rows = list(page.value)
        while page.odata_next_link:
            page = await delta_api.with_url(page.odata_next_link).get()
            rows += page.value
        changed = [x for x in rows if x.id == target]
        removed = [x for x in rows if x.id == gone]
        check("delta reports the update", changed and changed[0].job_title == "Delta Tester", changed)
        check(
            "delta reports the delete as @removed",
            removed and removed[0].additional_data.get("@removed") == {"reason": "deleted"},
            [x.additional_data for x in removed],
        )

        # A fresh round with `Prefer: odata.maxpagesize=7`, resent on every page
        # (docs/graph-facts.md §2): pages of at most 7, every remaining contact once.
        from kiota_abstractions.base_request_configuration import RequestConfiguration

        def prefer() -> RequestConfiguration:
            config = RequestConfiguration()
            config.headers.add("Prefer", "odata.maxpagesize=7")
            return config

        page = await delta_api.get(request_configuration=prefer())
        sizes = [len(page.value)]
        ids = [x.id for x in page.value]
        while page.odata_next_link:
            page = await delta_api.with_url(page.odata_next_link).get(request_configuration=prefer())
            sizes.append(len(page.value))
            ids += [x.id for x in page.value]
        check("delta with odata.maxpagesize=7: every contact once", len(ids) == 24 and len(set(ids)) == 24, (len(ids), len(set(ids))))
        check("delta with odata.maxpagesize=7: pages of at most 7", max(sizes) <= 7 and len(sizes) >= 4, sizes)
        check("delta with odata.maxpagesize=7: ends with a deltaLink", bool(page.odata_delta_link), page.odata_delta_link)
    finally:
        await cred.close()


@section("msgraph-sdk: groups, transitive members cast to users, PageIterator")
async def groups(c: Ctx) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
    from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
        GraphUserRequestBuilder,
    )
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph_core.tasks.page_iterator import PageIterator

    client, cred = graph_client(c)
    try:
        group = await client.groups.by_group_id(SALES_GROUP).get()
        check("GET /groups/{id}", group.display_name == "Sales" and group.mail == "sales@contoso.com", group)
        found = await client.groups.get(
            request_configuration=RequestConfiguration(
                query_parameters=GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
                    filter="mail eq 'sales@contoso.com'", select=["id", "displayName"]
                )
            )
        )
        check("groups $filter=mail eq", [g.id for g in found.value] == [SALES_GROUP], [g.id for g in found.value])

        # The OData cast needs the advanced query parameters (group-list-transitivemembers.md).
        query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
            count=True, top=2, select=["id", "userPrincipalName"]
        )
        config = RequestConfiguration(query_parameters=query)
        config.headers.add("ConsistencyLevel", "eventual")
        users_api = client.groups.by_group_id(SALES_GROUP).transitive_members.graph_user
        first = await users_api.get(request_configuration=config)
        check("transitive users: @odata.count", first.odata_count == 3, first.odata_count)
        check("transitive users: paged by $top", len(first.value) == 2 and bool(first.odata_next_link), (len(first.value), first.odata_next_link))
        seen = []
        iterator = PageIterator(first, client.request_adapter)
        iterator.headers.add("ConsistencyLevel", "eventual")

        def collect(user) -> bool:
            seen.append(user.user_principal_name)
            return True

        await iterator.iterate(collect)
        check("PageIterator walks the nested members once each", sorted(seen) == sorted(c.licensed[:3]), seen)
        try:
            await users_api.get()
            check("cast without ConsistencyLevel rejected", False, "accepted")
        except ODataError as e:
            check(
                "cast without ConsistencyLevel: 400 Request_UnsupportedQuery",
                e.response_status_code == 400 and e.error is not None and e.error.code == "Request_UnsupportedQuery",
                (e.response_status_code, e.error and e.error.code),
            )
        members = await client.groups.by_group_id(EMEA_GROUP).members.get()
        kinds = sorted(type(m).__name__ for m in members.value)
        check("direct members parse into User and Group", kinds == ["Group", "User", "User"], kinds)
        try:
            await client.groups.by_group_id("6a1f5a7e-0000-4000-8000-0000000000ff").get()
            check("unknown group rejected", False, "accepted")
        except ODataError as e:
            check(
                "unknown group: 404 Request_ResourceNotFound",
                e.response_status_code == 404 and e.error.code == "Request_ResourceNotFound",
                (e.response_status_code, e.error and e.error.code),
            )
    finally:
        await cred.close()


@section("msgraph-sdk: single-value extended property set, then read with $expand")
async def extended_properties(c: Ctx) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.contact import Contact
    from msgraph.generated.models.single_value_legacy_extended_property import SingleValueLegacyExtendedProperty
    from msgraph.generated.users.item.contacts.item.contact_item_request_builder import ContactItemRequestBuilder

    client, cred = graph_client(c)
    try:
        api = client.users.by_user_id(c.licensed[4]).contacts
        created = await api.post(
            Contact(
                display_name="Doctor Private",
                single_value_extended_properties=[SingleValueLegacyExtendedProperty(id="Integer 0x0036", value="2")],
            )
        )
        plain = await api.by_contact_id(created.id).get()
        check("not returned without $expand", not plain.single_value_extended_properties, plain.single_value_extended_properties)
        expanded = await api.by_contact_id(created.id).get(
            request_configuration=RequestConfiguration(
                query_parameters=ContactItemRequestBuilder.ContactItemRequestBuilderGetQueryParameters(
                    expand=["singleValueExtendedProperties($filter=id eq 'Integer 0x0036')"]
                )
            )
        )
        props = [(p.id, p.value) for p in expanded.single_value_extended_properties or []]
        check("$expand returns it, id normalised as Graph does", props == [("Integer 0x36", "2")], props)
    finally:
        await cred.close()


@section("kiota retry handler honours Retry-After on 429")
async def throttling(c: Ctx) -> None:
    client, cred = graph_client(c)
    try:
        upn = c.licensed[3]
        c.emu.control(
            "PUT",
            "/_emulator/faults",
            {"seed": 1, "rules": [{"match": {"method": "GET", "path": "/v1.0/users/*/contacts"}, "nth": 1, "action": {"status": 429, "retryAfter": 1}}]},
        )
        c.emu.control("POST", "/_emulator/stats/reset")
        started = time.monotonic()
        page = await client.users.by_user_id(upn).contacts.get()
        waited = time.monotonic() - started
        stats = c.emu.control("GET", "/_emulator/stats")
        check("throttled request succeeds after the SDK's retry", len(page.value) == 10, len(page.value))
        check("… the emulator saw the 429 and the retry", stats.get("throttled", 0) >= 1 and stats.get("requests") == 2, stats)
        check("… after waiting Retry-After (1 s)", waited >= 0.9, waited)

        # 503 without Retry-After: the SDK backs off on its own and retries
        # (docs/graph-facts.md §6).
        c.emu.control(
            "PUT",
            "/_emulator/faults",
            {"seed": 1, "rules": [{"match": {"method": "GET", "path": "/v1.0/users/*/contacts"}, "nth": 1, "action": {"status": 503}}]},
        )
        page = await client.users.by_user_id(upn).contacts.get()
        check("503 is retried by the SDK", len(page.value) == 10, len(page.value))

        # A token expired early: 401 InvalidAuthenticationToken with Graph's WWW-Authenticate,
        # which the SDK must surface as an ODataError (no claims challenge, so no retry).
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        c.emu.control(
            "PUT",
            "/_emulator/faults",
            {"seed": 1, "rules": [{"match": {"method": "GET"}, "nth": 1, "action": {"expireToken": True}}]},
        )
        try:
            await client.users.by_user_id(upn).contacts.get()
            check("expired token rejected", False, "accepted")
        except ODataError as e:
            check(
                "expired token: 401 InvalidAuthenticationToken",
                e.response_status_code == 401 and e.error is not None and e.error.code == "InvalidAuthenticationToken",
                (e.response_status_code, e.error and e.error.code),
            )
    finally:
        c.emu.control("PUT", "/_emulator/faults", {"seed": 1, "rules": []})
        await cred.close()


async def run_all(c: Ctx) -> None:
    await msal_secret(c)
    await msal_certificate(c)
    await azure_identity_tokens(c)
    await federated(c)
    await users_paging(c)
    await contacts(c)
    await contact_folders(c)
    await batch(c)
    await delta(c)
    await groups(c)
    await extended_properties(c)
    await throttling(c)


def main() -> int:
    # azure-identity logs every expected authentication failure as a warning; the checks report
    # those themselves.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)

    key_pem, cert_pem = make_certificate(args.workdir)
    ci_private, ci_public = make_ci_issuer_key()
    scenario = make_scenario(args.emulator, args.workdir, cert_pem, ci_public)
    emu = Emulator(args.emulator, args.workdir)
    try:
        # httpx (msgraph) and requests (MSAL, azure-identity) trust the emulator's CA this way.
        os.environ["SSL_CERT_FILE"] = emu.ca
        os.environ["REQUESTS_CA_BUNDLE"] = emu.ca
        tenant = scenario["tenants"][0]
        app = tenant["apps"][0]
        c = Ctx()
        c.emu = emu
        c.tenant_id = tenant["tenantId"]
        c.domain = next(d["id"] for d in tenant["domains"] if d.get("isDefault"))
        c.client_id = app["clientId"]
        c.secret = app["clientSecret"]
        c.key_pem, c.cert_pem = key_pem, cert_pem
        c.ci_private_pem = ci_private
        c.licensed = [u["userPrincipalName"] for u in tenant["users"] if u.get("assignedLicenses")]
        c.hub = next(u["userPrincipalName"] for u in tenant["users"] if not u.get("assignedLicenses"))
        print(f"emulator at {emu.url}, tenant {c.tenant_id}")
        asyncio.run(run_all(c))
    finally:
        emu.stop()
    print(f"\n{len(PASSED)} passed, {len(FAILURES)} failed")
    for f in FAILURES:
        print(f"  - {f}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
