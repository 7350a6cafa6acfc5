import type { DescEnum, DescExtension, DescFile, DescMessage } from "@bufbuild/protobuf";

/**
 * Lookup tables over a set of protobuf files and everything they import, for
 * server reflection: files by name, the file declaring a fully qualified
 * symbol, and extensions by extendee and number.
 */
export class DescriptorIndex {
  readonly #files = new Map<string, DescFile>();
  readonly #symbols = new Map<string, DescFile>();
  /** extendee type name → extension number → declaring file */
  readonly #extensions = new Map<string, Map<number, DescFile>>();
  readonly #messages = new Set<string>();
  /** Fully qualified names of the services declared in the given (root) files. */
  readonly services: readonly string[];

  constructor(files: readonly DescFile[]) {
    const services = new Set<string>();
    for (const file of files) {
      for (const service of file.services) services.add(service.typeName);
      this.#addWithDependencies(file);
    }
    this.services = [...services].sort();
  }

  /** A file by its path, e.g. "tokenbroker/v1/token_service.proto". */
  file(name: string): DescFile | undefined {
    return this.#files.get(name);
  }

  /**
   * The file declaring a message, enum, enum value, field, oneof, service,
   * method or extension, by fully qualified name without a leading dot.
   */
  fileContainingSymbol(symbol: string): DescFile | undefined {
    return this.#symbols.get(symbol.startsWith(".") ? symbol.slice(1) : symbol);
  }

  fileContainingExtension(extendee: string, number: number): DescFile | undefined {
    return this.#extensions.get(extendee)?.get(number);
  }

  /** Known extension numbers of a message, or undefined if the message is unknown. */
  extensionNumbers(extendee: string): number[] | undefined {
    if (!this.#messages.has(extendee)) return undefined;
    return [...(this.#extensions.get(extendee)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** `file` followed by its transitive imports, each once. */
  withDependencies(file: DescFile): DescFile[] {
    const out: DescFile[] = [];
    const seen = new Set<string>();
    const visit = (f: DescFile) => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      out.push(f);
      for (const dep of f.dependencies) visit(dep);
    };
    visit(file);
    return out;
  }

  #addWithDependencies(file: DescFile): void {
    if (this.#files.has(file.proto.name)) return;
    this.#files.set(file.proto.name, file);
    for (const dep of file.dependencies) this.#addWithDependencies(dep);
    for (const message of file.messages) this.#addMessage(file, message);
    for (const e of file.enums) this.#addEnum(file, e);
    for (const ext of file.extensions) this.#addExtension(file, ext);
    for (const service of file.services) {
      this.#symbols.set(service.typeName, file);
      for (const method of service.methods)
        this.#symbols.set(`${service.typeName}.${method.name}`, file);
    }
  }

  #addMessage(file: DescFile, message: DescMessage): void {
    this.#symbols.set(message.typeName, file);
    this.#messages.add(message.typeName);
    for (const field of message.fields)
      this.#symbols.set(`${message.typeName}.${field.name}`, file);
    for (const oneof of message.oneofs)
      this.#symbols.set(`${message.typeName}.${oneof.name}`, file);
    for (const nested of message.nestedMessages) this.#addMessage(file, nested);
    for (const e of message.nestedEnums) this.#addEnum(file, e);
    for (const ext of message.nestedExtensions) this.#addExtension(file, ext);
  }

  #addEnum(file: DescFile, e: DescEnum): void {
    this.#symbols.set(e.typeName, file);
    // Enum values are scoped like siblings of their enum (C++ scoping rules).
    const scope = e.typeName.slice(0, e.typeName.length - e.name.length);
    for (const value of e.values) this.#symbols.set(`${scope}${value.name}`, file);
  }

  #addExtension(file: DescFile, ext: DescExtension): void {
    this.#symbols.set(ext.typeName, file);
    let byNumber = this.#extensions.get(ext.extendee.typeName);
    if (!byNumber) {
      byNumber = new Map();
      this.#extensions.set(ext.extendee.typeName, byNumber);
    }
    byNumber.set(ext.number, file);
  }
}
