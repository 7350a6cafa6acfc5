/**
 * The cycle check run by `npm test` (`npm run check:cycles`): no import cycle
 * between the folders of src/, nor between its files. Type-only imports count:
 * a cycle of types still ties two folders into one unit.
 */
module.exports = {
  forbidden: [
    {
      name: "no-folder-cycle",
      comment:
        "Folders of src/ form a layered graph: a folder never depends, even indirectly, on one that depends on it.",
      severity: "error",
      scope: "folder",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "no-file-cycle",
      comment: "Files import each other in one direction only.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^gen/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
    },
  },
};
