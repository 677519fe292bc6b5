// Parses LogQL and TraceQL queries with Grafana's own grammars, the ones its query editors use.
// stdin:  [{"language": "logql" | "traceql", "query": "..."}]
// stdout: [{"errors": [offset of each syntax error], "tree": "Node(Child,Child(...))"}]
import { parser as logql } from "@grafana/lezer-logql";
import { parser as traceql } from "@grafana/lezer-traceql";

const parsers = { logql, traceql };

function describe(node) {
  const children = [];
  for (let child = node.firstChild; child; child = child.nextSibling) children.push(describe(child));
  return children.length ? `${node.name}(${children.join(",")})` : node.name;
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map(({ language, query }) => {
  const tree = parsers[language].parse(query);
  const errors = [];
  tree.iterate({ enter: (node) => { if (node.type.isError) errors.push(node.from); } });
  return { errors, tree: describe(tree.topNode) };
});
process.stdout.write(JSON.stringify(results));
