"""wsgw's own cfn-lint rules: what every template of the project must hold beyond
CloudFormation's schema (issue 20). `cargo xtask lint-templates` appends this directory
(`--append-rules`); a finding fails the lint like any other cfn-lint error.

- E9001: every WebSocket stage throttles its routes (DefaultRouteSettings with
  ThrottlingBurstLimit and ThrottlingRateLimit).
- E9002: every parameter carrying a secret (its name ends in Secret, Keys or Token) is
  NoEcho, and a *Secret parameter is empty or at least 32 characters (AllowedPattern
  `^(|.{32,})$`, or MinLength 32 when it has no empty default).
- E9003: retention parameters (their name ends in RetentionDays or TtlDays) default to a
  finite retention: a number above 0.
- E9004: a TokenLocation parameter does not default to `query` (tokens in URLs end up in
  access logs and browser history).
"""

from cfnlint.rules import CloudFormationLintRule, RuleMatch

SECRET_SUFFIXES = ("Secret", "Keys", "Token")
RETENTION_SUFFIXES = ("RetentionDays", "TtlDays")
THIRTY_TWO_OR_MORE = ".{32,}"


class ParameterRule(CloudFormationLintRule):
    """A rule on each parameter: `problems(name, parameter)` lists what is wrong."""

    source_url = "https://github.com/wsgw-rs/wsgw/blob/main/RELIABILITY.md#threat-model"
    tags = ["wsgw", "parameters"]

    def problems(self, name, parameter):
        raise NotImplementedError

    def match(self, cfn):
        return [
            RuleMatch(["Parameters", name], problem)
            for name, parameter in (cfn.template.get("Parameters") or {}).items()
            for problem in self.problems(name, parameter)
        ]


class StageThrottling(CloudFormationLintRule):
    id = "E9001"
    shortdesc = "WebSocket stages throttle their routes"
    description = "AWS::ApiGatewayV2::Stage needs DefaultRouteSettings.ThrottlingBurstLimit and ThrottlingRateLimit"
    source_url = "https://github.com/wsgw-rs/wsgw/blob/main/RELIABILITY.md#threat-model"
    tags = ["wsgw", "apigateway"]

    def match(self, cfn):
        matches = []
        for name, resource in cfn.get_resources(["AWS::ApiGatewayV2::Stage"]).items():
            settings = (resource.get("Properties") or {}).get("DefaultRouteSettings") or {}
            for limit in ("ThrottlingBurstLimit", "ThrottlingRateLimit"):
                if limit not in settings:
                    matches.append(
                        RuleMatch(
                            ["Resources", name, "Properties"],
                            f"Stage {name} sets no DefaultRouteSettings.{limit}: one client could run up the whole account's quota and the function's bill",
                        )
                    )
        return matches


class SecretParameters(ParameterRule):
    id = "E9002"
    shortdesc = "Secret parameters are hidden and long enough"
    description = "Parameters ending in Secret/Keys/Token are NoEcho; *Secret ones are empty or 32+ characters"

    def problems(self, name, parameter):
        if not name.endswith(SECRET_SUFFIXES):
            return []
        found = []
        if str(parameter.get("NoEcho", "false")).lower() != "true":
            found.append(f"Parameter {name} holds a secret: set NoEcho: true")
        if name.endswith("Secret"):
            pattern = str(parameter.get("AllowedPattern", ""))
            min_length = int(parameter.get("MinLength", 0) or 0)
            if THIRTY_TWO_OR_MORE not in pattern and min_length < 32:
                found.append(
                    f"Parameter {name} accepts secrets shorter than 32 characters: add AllowedPattern ^(|.{{32,}})$ (or MinLength: 32)"
                )
        return found


class FiniteRetention(ParameterRule):
    id = "E9003"
    shortdesc = "History is not kept forever by default"
    description = "Parameters ending in RetentionDays or TtlDays default to a number above 0"

    def problems(self, name, parameter):
        if not name.endswith(RETENTION_SUFFIXES):
            return []
        try:
            days = float(str(parameter.get("Default", "")))
        except ValueError:
            days = 0
        if days > 0:
            return []
        return [f"Parameter {name} keeps records forever by default: give it a Default number of days above 0"]


class TokensOutOfUrls(ParameterRule):
    id = "E9004"
    shortdesc = "Tokens stay out of URLs by default"
    description = "A TokenLocation parameter does not default to query"

    def problems(self, name, parameter):
        if name == "TokenLocation" and str(parameter.get("Default", "")) == "query":
            return [
                "TokenLocation defaults to query: tokens in URLs land in access logs and browser history; default to subprotocol (or any)"
            ]
        return []
